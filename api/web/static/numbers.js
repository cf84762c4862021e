/* Phone numbers: look-up (also from /numbers?number=…), the owner's dispute of a listing, report. */
(function () {
  'use strict';
  var bl = window.bl;
  var $ = function (id) { return document.getElementById(id); };

  /* ---------- look-up ---------- */
  var lookupForm = $('lookup-form');
  lookupForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    bl.clearErrors(lookupForm);
    var number = $('lookup-number').value.trim();
    var region = $('lookup-region').value.trim().toUpperCase();
    if (!number) { bl.showError('lookup-number', 'Enter a phone number.'); return; }
    var path = '/client/phones/' + encodeURIComponent(number) + (region ? '?region=' + encodeURIComponent(region) : '');
    var btn = $('lookup-submit');
    btn.disabled = true;
    bl.api('GET', path).then(function (res) {
      btn.disabled = false;
      if (res.status !== 200 || !res.body) {
        $('lookup-result').hidden = true;
        bl.showApiError(lookupForm, res, { invalid_phone_number: 'lookup-number', invalid_region: 'lookup-region' });
        return;
      }
      renderLookup(res.body);
    });
  });

  function renderLookup(p) {
    var status = String(p.status || 'unknown');
    $('lookup-phone').textContent = String(p.phoneNumber || '');
    var badge = $('lookup-status');
    badge.textContent = status === 'dangerous' ? 'Dangerous' : status === 'reported' ? 'Reported (not yet confirmed)' : 'No reports';
    badge.className = 'badge status-' + status.replace(/[^a-z]/gi, '');
    badge.setAttribute('data-status', status);
    $('lookup-approved').textContent = String(p.approvedReports || 0);
    $('lookup-pending').textContent = String(p.pendingReports || 0);
    var cats = bl.clear($('lookup-categories'));
    var keys = p.categories && typeof p.categories === 'object' ? Object.keys(p.categories) : [];
    if (!keys.length) cats.textContent = '–';
    keys.forEach(function (k, i) {
      if (i) cats.appendChild(document.createTextNode(' '));
      cats.appendChild(bl.el('span', { class: 'badge', 'data-testid': 'lookup-category' }, k + ': ' + p.categories[k]));
    });
    $('lookup-last').textContent = p.lastReportedAt ? bl.fmtTime(p.lastReportedAt) : '–';
    var flagged = Number(p.flaggedCalls || 0);
    $('lookup-flagged').textContent = flagged ? flagged + (flagged === 1 ? ' call judged a scam' : ' calls judged a scam') : '–';
    $('lookup-result').hidden = false;
    shown = String(p.phoneNumber || '');
    $('dispute').hidden = status !== 'dangerous';
    $('dispute-success').hidden = true;
  }

  /* ---------- dispute (the number's owner) ---------- */
  var shown = '';
  var disputeForm = $('dispute-form');
  var DISPUTE_FIELDS = {
    text_required: 'dispute-text', text_too_long: 'dispute-text', email_required: 'dispute-email',
    invalid_email: 'dispute-email', captcha_failed: $('dispute-turnstile-error') ? 'dispute-turnstile-error' : null
  };
  disputeForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    bl.clearErrors(disputeForm);
    var text = $('dispute-text').value.trim();
    var email = $('dispute-email').value.trim();
    var ok = true;
    if (!text) { bl.showError('dispute-text', 'Say why the listing is wrong.'); ok = false; }
    if (!email) { bl.showError('dispute-email', 'Give an email address for the decision.'); ok = false; }
    if (!ok || !shown) return;
    var btn = $('dispute-submit');
    btn.disabled = true;
    bl.api('POST', '/client/phones/' + encodeURIComponent(shown) + '/dispute',
      { text: text, contactEmail: email, turnstileToken: bl.turnstileToken(disputeForm) }).then(function (res) {
      btn.disabled = false;
      bl.resetTurnstile();
      if (res.status !== 201) { bl.showApiError(disputeForm, res, DISPUTE_FIELDS); return; }
      var box = $('dispute-success');
      box.textContent = 'Thank you. A moderator will review the listing of ' + shown + ' and email you the decision.';
      box.hidden = false;
      $('dispute-text').value = '';
    });
  });

  // A link to a number's page: /numbers?number=%2B14155550100
  var linked = new URLSearchParams(location.search).get('number');
  if (linked) {
    $('lookup-number').value = linked;
    lookupForm.requestSubmit ? lookupForm.requestSubmit() : lookupForm.dispatchEvent(new Event('submit', { cancelable: true }));
  }

  /* ---------- report ---------- */
  var reportForm = $('report-form');
  var REPORT_FIELDS = {
    invalid_phone_number: 'report-number', invalid_region: 'report-region', invalid_category: 'report-category',
    description_too_long: 'report-description', captcha_failed: $('turnstile-error') ? 'turnstile-error' : null
  };
  reportForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    bl.clearErrors(reportForm);
    $('report-success').hidden = true;
    var number = $('report-number').value.trim();
    var region = $('report-region').value.trim().toUpperCase();
    var category = $('report-category').value;
    var description = $('report-description').value;
    var ok = true;
    if (!number) { bl.showError('report-number', 'Enter the phone number you want to report.'); ok = false; }
    if (description.length > 2000) { bl.showError('report-description', 'The description is too long (at most 2000 characters).'); ok = false; }
    if (!ok) return;
    var body = { phoneNumber: number, category: category, turnstileToken: bl.turnstileToken(reportForm) };
    if (region) body.region = region;
    if (description.trim()) body.description = description.trim();
    var btn = $('report-submit');
    btn.disabled = true;
    bl.api('POST', '/client/phones/report', body).then(function (res) {
      btn.disabled = false;
      bl.resetTurnstile();
      if (res.status !== 201 && res.status !== 200) { bl.showApiError(reportForm, res, REPORT_FIELDS); return; }
      var box = $('report-success');
      box.textContent = 'Thank you. Your report about ' + String(res.body && res.body.phoneNumber || number) +
        ' was received and will be reviewed by a moderator.';
      box.hidden = false;
      $('report-description').value = '';
    });
  });
})();
