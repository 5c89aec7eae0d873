"""Meeting platform drivers behind one ABC (platforms.base), registered in platforms.registry."""
