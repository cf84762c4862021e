/* Ban notice: session token from the URL fragment (#token=…) → GET /report/check-ban. */
(function () {
  'use strict';
  var bl = window.bl, el = bl.el;
  var box = document.getElementById('ban-notice');
  var params = new URLSearchParams((location.hash || '').replace(/^#/, ''));
  var token = params.get('token');
  // Keep the token out of the address bar, history and screenshots.
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);

  function render(children) { bl.clear(box); [].concat(children).forEach(function (c) { if (c) box.appendChild(c); }); }

  if (!token) {
    render(el('p', { class: 'form-error', 'data-testid': 'ban-error' }, 'No session token was given. Open this page from the platform you use.'));
    return;
  }

  var REVIEW = { pending: 'A moderator is reviewing the reports.', reviewed_ban: 'A moderator reviewed the reports and confirmed the ban.',
    reviewed_vindicate: 'A moderator reviewed the reports and lifted the ban.' };

  bl.api('GET', '/report/check-ban', null, token).then(function (res) {
    if (res.status !== 200 || !res.body) {
      var msg = res.status === 401 ? 'Your session is invalid or has expired. Sign in again on the platform and retry.' : bl.errorMessage(res);
      render(el('p', { class: 'form-error', 'data-testid': 'ban-error' }, msg));
      return;
    }
    var b = res.body, r = b.banRecord || {};
    if (!b.isBanned) {
      render([
        el('h2', { 'data-testid': 'ban-status', 'data-status': b.banStatus || 'none' }, 'You are not banned'),
        el('p', null, b.banStatus === 'vindicated'
          ? 'You were banned temporarily, but a moderator reviewed the reports and lifted the ban.'
          : 'Your account is in good standing.')
      ]);
      return;
    }
    var permanent = b.banStatus === 'permanent';
    // Framed by a host platform: tell it, so it can sign the user out.
    if (window.parent !== window) {
      try {
        window.parent.postMessage({ type: 'blacklist:banned', status: b.banStatus, reviewStatus: r.reviewStatus || null }, '*');
      } catch (e) { /* nothing to tell */ }
    }
    render([
      el('h2', { 'data-testid': 'ban-status', 'data-status': b.banStatus },
        el('span', { class: 'badge status-' + (permanent ? 'permanent' : 'temporary') }, permanent ? 'Permanent ban' : 'Temporary ban')),
      el('p', null, permanent
        ? 'Your account was banned permanently after a moderator reviewed the reports against it. It is listed on the public blacklist.'
        : 'Your account is temporarily banned because several people reported it. A moderator will review the reports and either confirm the ban or lift it.'),
      el('dl', { class: 'kv' },
        el('dt', null, 'Reason'), el('dd', { 'data-testid': 'ban-reason' }, r.bannedReason ? String(r.bannedReason) : '–'),
        el('dt', null, 'Reports'), el('dd', { 'data-testid': 'ban-report-count' }, String(r.reportCount || 0)),
        el('dt', null, 'Banned on'), el('dd', { 'data-testid': 'ban-date' }, r.bannedAt ? bl.fmtTime(r.bannedAt) : '–'),
        el('dt', null, 'Review'), el('dd', { 'data-testid': 'ban-review' }, REVIEW[r.reviewStatus] || (r.reviewStatus ? String(r.reviewStatus) : '–'))),
      appealView(b),
      dataDownload(),
      // A pending ban is not a verdict: no link to the public list it is not on.
      permanent ? el('p', null, el('a', { href: '/blacklist' }, 'See the public blacklist')) : null
    ]);
  });

  /* The right of access: everything held about the user, as a JSON file. */
  function dataDownload() {
    var msg = el('span', { role: 'status', 'data-testid': 'my-data-message' });
    var button = el('button', { type: 'button', class: 'btn-secondary', 'data-testid': 'my-data' }, 'Download my data');
    button.addEventListener('click', function () {
      msg.textContent = '';
      bl.api('GET', '/report/my-data', null, token).then(function (res) {
        if (res.status !== 200 || !res.body) { msg.textContent = bl.errorMessage(res); return; }
        var blob = new Blob([JSON.stringify(res.body, null, 2)], { type: 'application/json' });
        var link = el('a', { href: URL.createObjectURL(blob), download: 'blacklist-my-data.json' });
        document.body.appendChild(link);
        link.click();
        link.remove();
      });
    });
    return el('p', null, button, ' ', msg, ' ', el('a', { href: '/privacy' }, 'What we keep about you'));
  }

  var APPEAL = { pending: 'Your appeal was received and is waiting for a moderator.',
    upheld: 'A moderator reviewed your appeal and the ban stays.',
    overturned: 'A moderator accepted your appeal and lifted the ban.' };

  /* The appeal's state, or the form to appeal (once per ban). */
  function appealView(b) {
    var section = el('section', { 'data-testid': 'appeal', 'aria-live': 'polite' }, el('h3', null, 'Appeal'));
    if (b.appeal) {
      section.appendChild(el('p', { 'data-testid': 'appeal-status', 'data-status': b.appeal.status }, APPEAL[b.appeal.status] || b.appeal.status));
      if (b.appeal.note) section.appendChild(el('p', null, 'Moderator\'s note: ' + b.appeal.note));
      return section;
    }
    var text = el('textarea', { id: 'appeal-text', maxlength: '4000', required: 'required', rows: '5', 'data-testid': 'appeal-text' });
    var email = el('input', { id: 'appeal-email', type: 'email', maxlength: '254', autocomplete: 'email', 'data-testid': 'appeal-email' });
    var msg = el('p', { class: 'form-error', role: 'status', 'data-testid': 'appeal-message' });
    var form = el('form', { 'data-testid': 'appeal-form' },
      el('label', { for: 'appeal-text' }, 'Why should the ban be lifted?'), text,
      el('label', { for: 'appeal-email' }, 'Email for the outcome (optional)'), email,
      el('button', { type: 'submit', 'data-testid': 'appeal-send' }, 'Send appeal'), msg);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      msg.textContent = '';
      bl.api('POST', '/report/appeal', { text: text.value, contactEmail: email.value.trim() || null }, token).then(function (res) {
        if (res.status === 201) {
          bl.clear(section);
          section.appendChild(el('h3', null, 'Appeal'));
          section.appendChild(el('p', { 'data-testid': 'appeal-status', 'data-status': 'pending' }, APPEAL.pending));
        } else {
          msg.textContent = bl.errorMessage(res);
        }
      });
    });
    section.appendChild(el('p', null, 'If you think the ban is a mistake, tell a moderator why. You can appeal once per ban.'));
    section.appendChild(form);
    return section;
  }
})();
