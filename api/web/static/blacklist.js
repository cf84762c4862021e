/* Formats the server-rendered ban dates (data-ms) in the visitor's locale. */
(function () {
  'use strict';
  function run() {
    Array.prototype.forEach.call(document.querySelectorAll('time[data-ms]'), function (t) {
      var ms = Number(t.getAttribute('data-ms'));
      if (!ms) return;
      var d = new Date(ms);
      if (isNaN(d.getTime())) return;
      t.setAttribute('datetime', d.toISOString());
      t.title = d.toISOString();
      t.textContent = window.bl ? window.bl.fmtTime(ms) : d.toLocaleString();
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run); else run();
})();
