/*
 * blacklist ban notice for host platforms.
 *   <script src="https://<blacklist host>/static/ban-embed.js" data-token="<session token>" data-target="#elementId"></script>
 * Renders a notice into the target element only when the user is banned. Self-contained: inline styles, no globals.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin;
  try { origin = new URL(script.src, location.href).origin; } catch (e) { return; }
  var token = script.getAttribute('data-token');
  var targetSel = script.getAttribute('data-target');
  if (!token || !targetSel) return;

  function node(tag, style, text) {
    var n = document.createElement(tag);
    if (style) n.setAttribute('style', style);
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function fmt(ms) {
    if (!ms) return '';
    var d = new Date(Number(ms));
    return isNaN(d.getTime()) ? '' : d.toLocaleString();
  }

  function render(target, b) {
    var r = b.banRecord || {};
    var permanent = b.banStatus === 'permanent';
    var color = permanent ? '#c62828' : '#b26a00';
    var box = node('div', 'box-sizing:border-box;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Arial,sans-serif;' +
      'font-size:15px;line-height:1.5;color:#1d2330;background:' + (permanent ? '#fdecea' : '#fff4e0') + ';border:1px solid ' + color +
      ';border-left:6px solid ' + color + ';border-radius:8px;padding:14px 16px;margin:8px 0;max-width:640px;text-align:left');
    box.setAttribute('role', 'alert');
    box.setAttribute('data-testid', 'ban-embed');
    box.setAttribute('data-status', String(b.banStatus));
    box.appendChild(node('div', 'font-weight:700;font-size:17px;color:' + color + ';margin:0 0 6px',
      permanent ? 'Your account is permanently banned' : 'Your account is temporarily banned'));
    box.appendChild(node('div', 'margin:0 0 8px', permanent
      ? 'A moderator reviewed the reports against your account and confirmed the ban.'
      : 'Several people reported your account. A moderator will review the reports and confirm or lift the ban.'));
    function row(label, value) {
      var p = node('div', 'margin:2px 0');
      p.appendChild(node('strong', 'font-weight:600', label + ': '));
      p.appendChild(document.createTextNode(String(value)));
      box.appendChild(p);
    }
    if (r.bannedReason) row('Reason', r.bannedReason);
    row('Reports', r.reportCount || 0);
    if (r.bannedAt) row('Since', fmt(r.bannedAt));
    if (r.reviewStatus) row('Review', r.reviewStatus === 'pending' ? 'pending' : r.reviewStatus === 'reviewed_ban' ? 'ban confirmed' : String(r.reviewStatus));
    var link = node('a', 'color:' + color + ';font-weight:600', 'View the public blacklist');
    link.href = origin + '/blacklist';
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    var lp = node('div', 'margin:8px 0 0');
    lp.appendChild(link);
    box.appendChild(lp);
    while (target.firstChild) target.removeChild(target.firstChild);
    target.appendChild(box);
  }

  function run() {
    var target;
    try { target = document.querySelector(targetSel); } catch (e) { return; }
    if (!target || !window.fetch) return;
    fetch(origin + '/api/v1/report/check-ban', {
      method: 'GET', mode: 'cors', credentials: 'omit',
      headers: { 'Authorization': 'Bearer ' + token, 'Accept': 'application/json' }
    }).then(function (res) { return res.ok ? res.json() : null; })
      .then(function (b) { if (b && b.isBanned) render(target, b); })
      .catch(function () { /* stay silent on the host page */ });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run); else run();
})();
