"""The assistant in the meeting: chat commands, the wake phrase, and answers posted in chat."""
