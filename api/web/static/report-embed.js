/*
 * blacklist report button for host platforms.
 *   <script src="https://<blacklist host>/static/report-embed.js" data-token="<reporter's session token>"
 *           data-reported-user="<the reported user's id>" data-target="#elementId"></script>
 * Renders a "Report" button into the target; it opens a dialog (category, optional reason, optional
 * email to hear the outcome of the review) and files
 * the report. A pair already reported shows a disabled "Reported" button. Keyboard accessible (the
 * dialog takes focus, Escape closes it, focus returns to the button). Styled with CSS variables the
 * host may set on the target: --bl-accent, --bl-text, --bl-bg, --bl-radius, --bl-font.
 * Self-contained: inline styles, no globals.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin;
  try { origin = new URL(script.src, location.href).origin; } catch (e) { return; }
  var token = script.getAttribute('data-token');
  var reported = script.getAttribute('data-reported-user');
  var targetSel = script.getAttribute('data-target');
  if (!token || !reported || !targetSel || !window.fetch) return;

  var CATEGORIES = [
    ['harassment', 'Harassment'], ['hate', 'Hate'], ['sexual_content', 'Sexual content'],
    ['minor_safety', 'A minor’s safety'], ['scam', 'Scam or fraud'], ['spam', 'Spam'],
    ['impersonation', 'Impersonation'], ['other', 'Something else']
  ];
  var FONT = 'var(--bl-font,-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Arial,sans-serif)';
  var ACCENT = 'var(--bl-accent,#c62828)';
  var TEXT = 'var(--bl-text,#1d2330)';
  var BG = 'var(--bl-bg,#ffffff)';
  var RADIUS = 'var(--bl-radius,6px)';

  function node(tag, style, text) {
    var n = document.createElement(tag);
    if (style) n.setAttribute('style', style);
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function call(method, path, body) {
    var headers = { 'Authorization': 'Bearer ' + token, 'Accept': 'application/json' };
    if (body) headers['Content-Type'] = 'application/json';
    return fetch(origin + '/api/v1' + path, {
      method: method, mode: 'cors', credentials: 'omit', headers: headers,
      body: body ? JSON.stringify(body) : undefined
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (json) { return { status: res.status, body: json }; });
    });
  }

  var target;
  try { target = document.querySelector(targetSel); } catch (e) { return; }
  if (!target) return;

  var button = node('button', 'font-family:' + FONT + ';font-size:14px;font-weight:600;color:#fff;background:' + ACCENT +
    ';border:0;border-radius:' + RADIUS + ';padding:8px 14px;cursor:pointer', 'Report');
  button.type = 'button';
  button.setAttribute('data-testid', 'report-button');
  button.setAttribute('aria-haspopup', 'dialog');

  function markReported() {
    button.textContent = 'Reported';
    button.disabled = true;
    button.setAttribute('aria-disabled', 'true');
    button.style.opacity = '0.6';
    button.style.cursor = 'default';
  }

  var layer = null;
  function close() {
    if (layer && layer.parentNode) layer.parentNode.removeChild(layer);
    layer = null;
    document.removeEventListener('keydown', onKey, true);
    if (!button.disabled) button.focus();
  }
  function onKey(e) { if (e.key === 'Escape') { e.preventDefault(); close(); } }

  function open() {
    if (layer || button.disabled) return;
    layer = node('div', 'position:fixed;inset:0;z-index:2147483646;background:rgba(16,20,30,.6);display:flex;' +
      'align-items:center;justify-content:center;padding:16px;box-sizing:border-box');
    // The dialog lives at the end of the page: carry the host's variables over from the target.
    var computed = window.getComputedStyle(target);
    ['--bl-accent', '--bl-text', '--bl-bg', '--bl-radius', '--bl-font'].forEach(function (name) {
      var value = computed.getPropertyValue(name);
      if (value && value.trim()) layer.style.setProperty(name, value.trim());
    });
    var dialog = node('form', 'box-sizing:border-box;width:100%;max-width:440px;font-family:' + FONT + ';font-size:15px;color:' + TEXT +
      ';background:' + BG + ';border-radius:' + RADIUS + ';padding:18px 20px;box-shadow:0 10px 40px rgba(0,0,0,.3)');
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-labelledby', 'bl-report-title');
    dialog.setAttribute('data-testid', 'report-dialog');
    var title = node('h2', 'font-size:18px;margin:0 0 12px', 'Report this user');
    title.id = 'bl-report-title';
    dialog.appendChild(title);
    var catLabel = node('label', 'display:block;font-weight:600;margin:0 0 4px', 'What happened?');
    catLabel.htmlFor = 'bl-report-category';
    var select = node('select', 'width:100%;font:inherit;padding:6px;margin:0 0 12px;border-radius:' + RADIUS);
    select.id = 'bl-report-category';
    select.setAttribute('data-testid', 'report-category');
    CATEGORIES.forEach(function (c) { var o = node('option', null, c[1]); o.value = c[0]; select.appendChild(o); });
    var reasonLabel = node('label', 'display:block;font-weight:600;margin:0 0 4px', 'Details (optional)');
    reasonLabel.htmlFor = 'bl-report-reason';
    var reason = node('textarea', 'width:100%;box-sizing:border-box;font:inherit;padding:6px;min-height:80px;border-radius:' + RADIUS);
    reason.id = 'bl-report-reason';
    reason.maxLength = 2000;
    reason.setAttribute('data-testid', 'report-reason');
    var mailLabel = node('label', 'display:block;font-weight:600;margin:12px 0 4px', 'Email me the outcome (optional)');
    mailLabel.htmlFor = 'bl-report-email';
    var mail = node('input', 'width:100%;box-sizing:border-box;font:inherit;padding:6px;border-radius:' + RADIUS);
    mail.id = 'bl-report-email';
    mail.type = 'email';
    mail.maxLength = 254;
    mail.autocomplete = 'email';
    mail.setAttribute('data-testid', 'report-email');
    var error = node('p', 'color:' + ACCENT + ';margin:8px 0 0;min-height:1.2em');
    error.setAttribute('role', 'alert');
    error.setAttribute('data-testid', 'report-error');
    var actions = node('div', 'display:flex;gap:8px;justify-content:flex-end;margin:12px 0 0');
    var cancel = node('button', 'font:inherit;padding:8px 14px;border-radius:' + RADIUS + ';border:1px solid #aab;background:transparent;color:' + TEXT + ';cursor:pointer', 'Cancel');
    cancel.type = 'button';
    cancel.setAttribute('data-testid', 'report-cancel');
    var submit = node('button', 'font:inherit;font-weight:600;padding:8px 14px;border-radius:' + RADIUS + ';border:0;background:' + ACCENT + ';color:#fff;cursor:pointer', 'Send report');
    submit.type = 'submit';
    submit.setAttribute('data-testid', 'report-submit');
    actions.appendChild(cancel);
    actions.appendChild(submit);
    [catLabel, select, reasonLabel, reason, mailLabel, mail, error, actions].forEach(function (n) { dialog.appendChild(n); });
    layer.appendChild(dialog);
    layer.addEventListener('click', function (e) { if (e.target === layer) close(); });
    cancel.addEventListener('click', close);
    dialog.addEventListener('submit', function (e) {
      e.preventDefault();
      submit.disabled = true;
      error.textContent = '';
      call('POST', '/report/user', { reportedUserId: reported, category: select.value, reason: reason.value || null,
        notifyEmail: mail.value.trim() || null })
        .then(function (res) {
          if (res.status === 201 || (res.body && res.body.error === 'already_reported')) {
            markReported();
            close();
            button.focus();
            return;
          }
          submit.disabled = false;
          error.textContent = (res.body && res.body.message) || 'The report could not be sent. Try again later.';
        })
        .catch(function () { submit.disabled = false; error.textContent = 'The report could not be sent. Try again later.'; });
    });
    document.addEventListener('keydown', onKey, true);
    document.body.appendChild(layer);
    select.focus();
  }

  button.addEventListener('click', open);
  while (target.firstChild) target.removeChild(target.firstChild);
  target.appendChild(button);
  call('GET', '/report/status?reportedUserId=' + encodeURIComponent(reported))
    .then(function (res) { if (res.status === 200 && res.body && res.body.reported) markReported(); })
    .catch(function () { /* the button stays usable */ });
})();
