/*
 * blacklist ban notice for host platforms.
 *   <script src="https://<blacklist host>/static/ban-embed.js" data-token="<session token>"
 *           data-target="#elementId" data-mode="inline|overlay" data-on-ban="myCallback"></script>
 * Checks the user's standing and, when they are banned, shows why: inline in the target element,
 * or (data-mode="overlay") over the whole page. Tells the host at once so it can sign the user out:
 * calls window[data-on-ban]({status, reviewStatus}) when given, dispatches a `blacklist:banned`
 * CustomEvent on document, and posts {type: 'blacklist:banned', status, reviewStatus} to this window.
 * A lifted ban (vindicated) is shown inline, never as an overlay. The public blacklist is linked
 * only for a permanent ban. Self-contained: inline styles, no globals.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin;
  try { origin = new URL(script.src, location.href).origin; } catch (e) { return; }
  var token = script.getAttribute('data-token');
  var targetSel = script.getAttribute('data-target');
  var overlay = script.getAttribute('data-mode') === 'overlay';
  var onBan = script.getAttribute('data-on-ban');
  if (!token || (!targetSel && !overlay)) return;

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

  var LOOK = {
    permanent: { color: '#c62828', bg: '#fdecea', title: 'Your account is permanently banned',
      text: 'A moderator reviewed the reports against your account and confirmed the ban.' },
    temporary: { color: '#b26a00', bg: '#fff4e0', title: 'Your account is temporarily banned',
      text: 'Several people reported your account. A moderator will review the reports and confirm or lift the ban.' },
    vindicated: { color: '#2e7d32', bg: '#edf7ed', title: 'Your ban was lifted',
      text: 'A moderator reviewed the reports against your account and lifted the ban.' }
  };

  function notice(b) {
    var r = b.banRecord || {};
    var look = LOOK[b.banStatus] || LOOK.temporary;
    var box = node('div', 'box-sizing:border-box;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Arial,sans-serif;' +
      'font-size:15px;line-height:1.5;color:#1d2330;background:' + look.bg + ';border:1px solid ' + look.color +
      ';border-left:6px solid ' + look.color + ';border-radius:8px;padding:14px 16px;margin:8px 0;max-width:640px;text-align:left');
    box.setAttribute('data-testid', 'ban-embed');
    box.setAttribute('data-status', String(b.banStatus));
    var title = node('div', 'font-weight:700;font-size:17px;color:' + look.color + ';margin:0 0 6px', look.title);
    title.setAttribute('tabindex', '-1');
    title.setAttribute('data-testid', 'ban-embed-title');
    box.appendChild(title);
    box.appendChild(node('div', 'margin:0 0 8px', look.text));
    function row(label, value) {
      var p = node('div', 'margin:2px 0');
      p.appendChild(node('strong', 'font-weight:600', label + ': '));
      p.appendChild(document.createTextNode(String(value)));
      box.appendChild(p);
    }
    if (b.banStatus !== 'vindicated') {
      if (r.bannedReason) row('Reason', r.bannedReason);
      row('Reports', r.reportCount || 0);
      if (r.bannedAt) row('Since', fmt(r.bannedAt));
      if (r.reviewStatus) row('Review', r.reviewStatus === 'pending' ? 'pending' : r.reviewStatus === 'reviewed_ban' ? 'ban confirmed' : String(r.reviewStatus));
    }
    // A pending ban is not a verdict: no link to the public list it is not on.
    if (b.banStatus === 'permanent') {
      var link = node('a', 'color:' + look.color + ';font-weight:600', 'View the public blacklist');
      link.href = origin + '/blacklist';
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      link.setAttribute('data-testid', 'ban-embed-blacklist');
      var lp = node('div', 'margin:8px 0 0');
      lp.appendChild(link);
      box.appendChild(lp);
    }
    return { box: box, title: title };
  }

  function tellHost(b) {
    var detail = { type: 'blacklist:banned', status: b.banStatus,
      reviewStatus: (b.banRecord && b.banRecord.reviewStatus) || null };
    if (onBan && typeof window[onBan] === 'function') {
      try { window[onBan](detail); } catch (e) { /* the host's callback is its own business */ }
    }
    try { document.dispatchEvent(new CustomEvent('blacklist:banned', { detail: detail })); } catch (e) { /* old browsers */ }
    try { window.postMessage(detail, location.origin); } catch (e) { /* opaque origins */ }
  }

  function show(b) {
    var n = notice(b);
    if (overlay && b.isBanned) {
      // Takes over the page: a modal layer above everything the host drew.
      var layer = node('div', 'position:fixed;inset:0;z-index:2147483647;background:rgba(16,20,30,.82);' +
        'display:flex;align-items:center;justify-content:center;padding:16px;box-sizing:border-box');
      layer.setAttribute('role', 'alertdialog');
      layer.setAttribute('aria-modal', 'true');
      layer.setAttribute('data-testid', 'ban-overlay');
      n.box.style.margin = '0';
      n.box.style.width = '100%';
      layer.appendChild(n.box);
      document.body.appendChild(layer);
    } else {
      var target;
      try { target = document.querySelector(targetSel); } catch (e) { return; }
      if (!target) return;
      n.box.setAttribute('role', 'alert');
      while (target.firstChild) target.removeChild(target.firstChild);
      target.appendChild(n.box);
    }
    try { n.title.focus(); } catch (e) { /* not focusable yet */ }
  }

  function run() {
    if (!window.fetch) return;
    fetch(origin + '/api/v1/report/check-ban', {
      method: 'GET', mode: 'cors', credentials: 'omit',
      headers: { 'Authorization': 'Bearer ' + token, 'Accept': 'application/json' }
    }).then(function (res) { return res.ok ? res.json() : null; })
      .then(function (b) {
        if (!b) return;
        if (b.isBanned) { show(b); tellHost(b); } else if (b.banStatus === 'vindicated' && targetSel) { show(b); }
      })
      .catch(function () { /* stay silent on the host page */ });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run); else run();
})();
