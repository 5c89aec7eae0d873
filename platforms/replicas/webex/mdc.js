/*
 * Momentum Design (mdc-*) custom elements, reduced to what the replica needs: the real client
 * renders its controls as <mdc-button> and <mdc-text> web components; an mdc-button is focusable,
 * has role=button, honours `disabled` and activates on click, Enter and Space.
 */
(function () {
  'use strict';
  if (window.customElements.get('mdc-button')) return;
  class MdcButton extends HTMLElement {
    connectedCallback() {
      this.setAttribute('role', 'button');
      if (!this.hasAttribute('tabindex')) this.setAttribute('tabindex', '0');
      if (this._wired) return;
      this._wired = true;
      this.addEventListener('click', (ev) => {
        if (this.hasAttribute('disabled')) {
          ev.stopImmediatePropagation();
          ev.preventDefault();
        }
      }, true);
      this.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          this.click();
        }
      });
    }
  }
  class MdcText extends HTMLElement {}
  window.customElements.define('mdc-button', MdcButton);
  window.customElements.define('mdc-text', MdcText);
})();
