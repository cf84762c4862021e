/*
 * blacklist ban notice for host platforms.
 *   <script src="https://<blacklist host>/static/ban-embed.js" data-token="<session token>"
 *           data-target="#elementId" data-mode="inline|overlay" data-on-ban="myCallback"></script>
 * Checks the user's standing and, when they are banned, shows why: inline in the target element,
 * or (data-mode="overlay") over the whole page. Tells the host at once so it can sign the user out:
 * calls window[data-on-ban]({status, reviewStatus}) when given, dispatches a `blacklist:banned`
 * CustomEvent on document, and posts {type: 'blacklist:banned', status, reviewStatus} to this window.
 * A lifted ban (vindicated) is shown inline, never as an overlay. The public blacklist is linked
 * only for a permanent ban. A banned user can appeal from the notice, once per ban (a text and an
 * optional email for the outcome); the appeal's state and the moderator's note show on it.
 * Self-contained: inline styles, no globals.
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
    box.appendChild(appealArea(b, look));
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

  var APPEAL = {
    pending: 'Your appeal was received and is waiting for a moderator.',
    upheld: 'A moderator reviewed your appeal and the ban stays.',
    overturned: 'A moderator accepted your appeal and lifted the ban.'
  };

  /* The appeal: its state when there is one, else (while banned) a button that opens the form. */
  function appealArea(b, look) {
    var area = node('div', 'margin:10px 0 0;padding:10px 0 0;border-top:1px solid rgba(0,0,0,.12)');
    area.setAttribute('data-testid', 'ban-embed-appeal');
    var a = b.appeal;
    if (a) {
      var state = node('div', 'font-weight:600', APPEAL[a.status] || String(a.status));
      state.setAttribute('data-testid', 'ban-embed-appeal-status');
      state.setAttribute('data-status', String(a.status));
      area.appendChild(state);
      if (a.note) area.appendChild(node('div', 'margin:4px 0 0', 'Moderator\'s note: ' + a.note));
      return area;
    }
    if (!b.isBanned) return area;
    var open = node('button', 'font:inherit;padding:6px 14px;border-radius:6px;border:1px solid ' + look.color +
      ';background:#fff;color:' + look.color + ';cursor:pointer;font-weight:600', 'Appeal this ban');
    open.type = 'button';
    open.setAttribute('data-testid', 'ban-embed-appeal-open');
    area.appendChild(open);
    open.addEventListener('click', function () {
      area.removeChild(open);
      area.appendChild(appealForm(area, look));
    });
    return area;
  }

  function appealForm(area, look) {
    var form = node('form', 'display:flex;flex-direction:column;gap:6px;margin:0');
    form.setAttribute('data-testid', 'ban-embed-appeal-form');
    var field = 'display:block;box-sizing:border-box;width:100%;font:inherit;padding:6px 8px;border:1px solid #9aa3b2;border-radius:6px;background:#fff;color:#1d2330';
    var id = 'bl-appeal-' + Math.random().toString(36).slice(2);
    var textLabel = node('label', 'font-weight:600', 'Why should the ban be lifted?');
    textLabel.htmlFor = id + '-text';
    var text = node('textarea', field + ';min-height:90px');
    text.id = id + '-text';
    text.maxLength = 4000;
    text.setAttribute('aria-required', 'true');
    text.setAttribute('data-testid', 'ban-embed-appeal-text');
    var mailLabel = node('label', 'font-weight:600', 'Email for the outcome (optional)');
    mailLabel.htmlFor = id + '-email';
    var mail = node('input', field);
    mail.id = id + '-email';
    mail.type = 'email';
    mail.maxLength = 254;
    mail.autocomplete = 'email';
    mail.setAttribute('data-testid', 'ban-embed-appeal-email');
    var send = node('button', 'align-self:flex-start;font:inherit;padding:6px 14px;border-radius:6px;border:0;background:' +
      look.color + ';color:#fff;cursor:pointer;font-weight:600', 'Send appeal');
    send.type = 'submit';
    send.setAttribute('data-testid', 'ban-embed-appeal-send');
    var msg = node('div', 'min-height:1.5em');
    msg.setAttribute('role', 'status');
    msg.setAttribute('data-testid', 'ban-embed-appeal-message');
    [textLabel, text, mailLabel, mail, send, msg].forEach(function (n) { form.appendChild(n); });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (!text.value.trim()) { msg.textContent = 'Please say why the ban should be lifted.'; text.focus(); return; }
      send.disabled = true;
      msg.textContent = 'Sending…';
      fetch(origin + '/api/v1/report/appeal', {
        method: 'POST', mode: 'cors', credentials: 'omit',
        headers: { 'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: JSON.stringify({ text: text.value, contactEmail: mail.value.trim() || null })
      }).then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) { return { status: res.status, body: body }; });
      }).then(function (r) {
        if (r.status === 201 || (r.status === 409 && r.body.error === 'already_appealed')) {
          while (area.firstChild) area.removeChild(area.firstChild);
          var done = node('div', 'font-weight:600', APPEAL.pending);
          done.setAttribute('data-testid', 'ban-embed-appeal-status');
          done.setAttribute('data-status', 'pending');
          done.setAttribute('tabindex', '-1');
          area.appendChild(done);
          try { done.focus(); } catch (e) { /* not focusable */ }
          return;
        }
        send.disabled = false;
        msg.textContent = (r.body && r.body.message) ? String(r.body.message) : 'The appeal could not be sent. Please try again.';
      }).catch(function () {
        send.disabled = false;
        msg.textContent = 'The appeal could not be sent. Please try again.';
      });
    });
    setTimeout(function () { try { text.focus(); } catch (e) { /* not focusable */ } }, 0);
    return form;
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
