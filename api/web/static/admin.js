/* Admin console: login, tabs, 5 s auto-refresh of the visible tab. */
(function () {
  'use strict';
  var bl = window.bl, el = bl.el;
  var $ = function (id) { return document.getElementById(id); };
  var TOKEN_KEY = 'bl_admin_token';
  var token = sessionStorage.getItem(TOKEN_KEY);
  var currentTab = 'stats';
  var lastJson = {};          // tab → JSON of the last render (skip re-rendering unchanged data: keeps videos playing)
  var timer = null, loading = false;

  /* ---------- auth ---------- */
  function showLogin(message) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    lastJson = {};
    $('admin-view').hidden = true;
    $('login-view').hidden = false;
    bl.clearErrors('login-form');
    if (message) bl.showError('login-form', message);
    if (timer) { clearInterval(timer); timer = null; }
  }
  function showApp() {
    $('login-view').hidden = true;
    $('admin-view').hidden = false;
    selectTab(tabFromHash() || currentTab);
    if (!timer) timer = setInterval(function () { if (document.visibilityState !== 'hidden') refresh(); }, 5000);
  }

  /* API call with the admin token; a 401 sends the admin back to the login form. */
  function call(method, path, body) {
    return bl.api(method, path, body, token).then(function (res) {
      if (res.status === 401) { showLogin('Your session has expired. Please sign in again.'); throw new Error('unauthorized'); }
      return res;
    });
  }

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var form = $('login-form');
    bl.clearErrors(form);
    var u = $('login-username').value.trim(), p = $('login-password').value;
    if (!u) { bl.showError('login-username', 'Enter your username.'); return; }
    if (!p) { bl.showError('login-password', 'Enter your password.'); return; }
    var btn = $('login-submit');
    btn.disabled = true;
    bl.api('POST', '/admin/login', new URLSearchParams({ username: u, password: p })).then(function (res) {
      btn.disabled = false;
      if (res.status !== 200 || !res.body || !res.body.access_token) { bl.showApiError(form, res, {}); return; }
      token = res.body.access_token;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('login-password').value = '';
      showApp();
    });
  });

  $('logout-btn').addEventListener('click', function () {
    var t = token;
    showLogin();
    if (t) bl.api('POST', '/admin/logout', null, t);
  });

  /* ---------- feedback ---------- */
  var flashTimer = null;
  function flash(message) {
    var f = $('admin-flash');
    f.textContent = message;
    f.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { f.hidden = true; }, 6000);
  }
  function showErr(res) { $('admin-error').textContent = res ? bl.errorMessage(res) : ''; }
  function ignoreAuth(e) { if (!e || e.message !== 'unauthorized') throw e; }

  /* ---------- tabs ---------- */
  var tabButtons = document.querySelectorAll('.tabs [data-tab]');
  function tabFromHash() {
    var h = (location.hash || '').replace('#', '');
    return loaders[h] ? h : null;
  }
  function selectTab(name) {
    currentTab = name;
    Array.prototype.forEach.call(tabButtons, function (b) { b.setAttribute('aria-selected', b.getAttribute('data-tab') === name ? 'true' : 'false'); });
    Object.keys(loaders).forEach(function (k) { $('panel-' + k).hidden = k !== name; });
    if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
    showErr(null);
    refresh(true);
  }
  Array.prototype.forEach.call(tabButtons, function (b) {
    b.addEventListener('click', function () { selectTab(b.getAttribute('data-tab')); });
  });
  $('refresh-btn').addEventListener('click', function () { refresh(true); });

  function refresh(force) {
    if (!token || (loading && !force)) return;
    loading = true;
    var tab = currentTab;
    Promise.resolve().then(function () { return loaders[tab](!!force); }).then(function () {
      $('last-refresh').textContent = 'Updated ' + new Date().toLocaleTimeString();
    }).catch(ignoreAuth).then(function () { loading = false; }, function () { loading = false; });
  }
  /* Render only when the data changed (or forced). */
  function changed(key, data, force) {
    var j = JSON.stringify(data);
    if (!force && lastJson[key] === j) return false;
    lastJson[key] = j;
    return true;
  }

  function stat(label, value, key) {
    return el('div', { class: 'stat', 'data-testid': 'stat-' + key }, el('dt', null, label), el('dd', null, value === undefined || value === null ? '–' : String(value)));
  }
  function fill(container, nodes) { bl.clear(container); nodes.forEach(function (n) { if (n) container.appendChild(n); }); }
  function emptyRow(tbody, cols, text) { tbody.appendChild(el('tr', null, el('td', { colspan: cols, class: 'muted' }, text))); }
  function badge(status) { return el('span', { class: 'badge status-' + String(status).replace(/[^a-z]/gi, '') }, String(status)); }
  function pct(x) { return (x === undefined || x === null) ? null : Math.round(Number(x) * 1000) / 10 + ' %'; }

  function queueStatNodes(q) {
    return [stat('Queued', q.queued, 'queued'), stat('Processing', q.processing, 'processing'), stat('Completed', q.completed, 'completed'),
      stat('Failed', q.failed, 'failed'), stat('Workers online', q.workersOnline, 'workersOnline'),
      stat('Avg processing', bl.fmtDuration(q.avgProcessingSeconds), 'avgProcessingSeconds'),
      stat('Oldest queued', bl.fmtDuration(q.oldestQueuedAgeSeconds), 'oldestQueuedAgeSeconds')];
  }

  /* ---------- loaders ---------- */
  var loaders = {
    stats: function (force) {
      return Promise.all([call('GET', '/report/stats'), call('GET', '/admin/queue/stats')]).then(function (r) {
        var s = r[0], q = r[1];
        if (s.status !== 200) showErr(s); else if (q.status !== 200) showErr(q); else showErr(null);
        if (s.status === 200 && changed('stats', s.body, force)) {
          var b = s.body;
          fill($('report-stats'), [stat('Total reports', b.totalReports, 'totalReports'), stat('Reports (24 h)', b.reportsLast24h, 'reportsLast24h'),
            stat('Total bans', b.totalBans, 'totalBans'), stat('Pending reviews', b.pendingReviews, 'pendingReviews'),
            stat('Temporary bans', b.temporaryBans, 'temporaryBans'), stat('Permanent bans', b.permanentBans, 'permanentBans'),
            stat('Vindicated', b.vindicated, 'vindicated'), stat('Vindication rate', pct(b.vindicationRate), 'vindicationRate'),
            stat('Reviews decided', b.reviewsDecided, 'reviewsDecided'),
            stat('Avg review time', b.avgReviewSeconds == null ? null : bl.fmtDuration(b.avgReviewSeconds), 'avgReviewSeconds'),
            stat('Banned IPs', b.bannedIps, 'bannedIps'), stat('Ban evasion attempts', b.banEvasionAttempts, 'banEvasionAttempts')]);
        }
        if (q.status === 200 && changed('stats-queue', q.body, force)) fill($('queue-stats-summary'), queueStatNodes(q.body));
      });
    },

    pending: function (force) {
      var qs = '?limit=20' + (pendingPager.cursor() ? '&cursor=' + encodeURIComponent(pendingPager.cursor()) : '');
      return call('GET', '/report/pending' + qs).then(function (res) {
        if (res.status !== 200) { showErr(res); return; }
        showErr(null);
        pendingPager.setNext(res.body.nextCursor);
        if (!changed('pending', res.body, force)) return;
        var list = bl.clear($('pending-list'));
        var items = (res.body && res.body.pending) || [];
        $('pending-count').textContent = items.length ? items.length + (res.body.nextCursor ? '+' : '') + ' user(s) waiting for review.' : '';
        if (!items.length) { list.appendChild(el('div', { class: 'card empty', 'data-testid': 'pending-empty' }, 'No pending reviews.')); return; }
        items.forEach(function (u) { list.appendChild(pendingCard(u)); });
      });
    },

    appeals: function (force) { return loadQueue(appealsQueue, force); },

    disputes: function (force) { return loadQueue(disputesQueue, force); },

    reports: function (force) {
      var userId = $('reports-user').value.trim();
      var qs = '?limit=50' + (reportsPager.cursor() ? '&cursor=' + encodeURIComponent(reportsPager.cursor()) : '') +
        (userId ? '&userId=' + encodeURIComponent(userId) : '');
      return call('GET', '/report/reports' + qs).then(function (res) {
        if (res.status !== 200) { showErr(res); return; }
        showErr(null);
        reportsPager.setNext(res.body.nextCursor);
        if (!changed('reports', res.body, force)) return;
        var tbody = bl.clear($('reports-body'));
        var rows = res.body.reports || [];
        if (!rows.length) emptyRow(tbody, 6, 'No reports.');
        rows.forEach(function (r) {
          tbody.appendChild(el('tr', { 'data-testid': 'report-row' },
            el('td', null, bl.fmtTime(r.timestamp)),
            el('td', null, r.reportedUserName ? String(r.reportedUserName) : '', el('div', { class: 'muted small' }, String(r.reportedUserId || ''))),
            el('td', null, r.reporterName ? String(r.reporterName) : '', el('div', { class: 'muted small' }, String(r.reporterUserId || ''))),
            el('td', null, r.reporterIp ? String(r.reporterIp) : '–'),
            el('td', null, r.reason ? String(r.reason) : '–'),
            el('td', null, String(r.reportCount == null ? '' : r.reportCount))));
        });
      });
    },

    phones: function (force) {
      var status = $('phones-status').value, q = $('phones-q').value.trim();
      var qs = '?status=' + encodeURIComponent(status) + '&limit=50' + (q ? '&q=' + encodeURIComponent(q) : '') +
        (phonesPager.cursor() ? '&cursor=' + encodeURIComponent(phonesPager.cursor()) : '');
      return call('GET', '/admin/phones' + qs).then(function (res) {
        if (res.status !== 200) { showErr(res); return; }
        showErr(null);
        phonesPager.setNext(res.body.nextCursor);
        if (!changed('phones', res.body, force)) return;
        var tbody = bl.clear($('phones-body'));
        var items = res.body.items || [];
        if (!items.length) emptyRow(tbody, 7, 'No ' + status + ' phone reports.');
        items.forEach(function (p) {
          var actions = el('td', { class: 'actions', style: 'margin:0' });
          if (p.status !== 'approved') actions.appendChild(el('button', { type: 'button', class: 'btn-ok btn-small', 'data-testid': 'phone-approve',
            onclick: function () { phoneAction('POST', '/admin/phones/' + encodeURIComponent(p.id) + '/approve', 'Approved ' + p.phoneNumber + '.'); } }, 'Approve'));
          if (p.status !== 'rejected') actions.appendChild(el('button', { type: 'button', class: 'btn-secondary btn-small', 'data-testid': 'phone-reject',
            onclick: function () { phoneAction('POST', '/admin/phones/' + encodeURIComponent(p.id) + '/reject', 'Rejected the report about ' + p.phoneNumber + '.'); } }, 'Reject'));
          actions.appendChild(el('button', { type: 'button', class: 'btn-danger btn-small', 'data-testid': 'phone-delete',
            onclick: function () { phoneAction('DELETE', '/admin/phones/' + encodeURIComponent(p.id), 'Deleted the report about ' + p.phoneNumber + '.'); } }, 'Delete'));
          tbody.appendChild(el('tr', { 'data-testid': 'phone-row', 'data-id': p.id },
            el('td', null, String(p.phoneNumber || '')),
            el('td', null, String(p.category || '')),
            el('td', null, p.description ? String(p.description) : '–'),
            el('td', null, badge(p.status || '')),
            el('td', null, bl.fmtTime(p.createdAt)),
            el('td', null, p.reporterIp ? String(p.reporterIp) : '–',
              p.distinctIps != null ? el('div', { class: 'muted small' }, p.distinctIps + ' distinct IP(s)') : null),
            actions));
        });
      });
    },

    workers: function (force) {
      return call('GET', '/admin/workers').then(function (res) {
        if (res.status !== 200) { showErr(res); return; }
        showErr(null);
        if (!changed('workers', res.body, force)) return;
        var tbody = bl.clear($('workers-body'));
        var items = res.body.items || [];
        if (!items.length) emptyRow(tbody, 8, 'No workers registered.');
        items.forEach(function (w) {
          tbody.appendChild(el('tr', { 'data-testid': 'worker-row', 'data-id': w.workerId },
            el('td', null, String(w.name || ''), el('div', { class: 'muted small' }, String(w.workerId || ''))),
            el('td', null, badge(w.status || 'offline')),
            el('td', null, w.lastSeenAt ? bl.fmtTime(w.lastSeenAt) : 'never'),
            el('td', { class: 'small' }, w.currentTaskId ? String(w.currentTaskId) : '–'),
            el('td', null, String(w.tasksCompleted || 0)),
            el('td', null, String(w.tasksFailed || 0)),
            el('td', null, w.version ? String(w.version) : '–'),
            el('td', null, w.status === 'revoked' ? null : el('button', { type: 'button', class: 'btn-danger btn-small', 'data-testid': 'worker-revoke',
              onclick: function (ev) {
                ev.target.disabled = true;
                call('DELETE', '/admin/workers/' + encodeURIComponent(w.workerId)).then(function (r) {
                  if (r.status === 204 || r.status === 200) flash('Revoked worker ' + w.name + '.'); else showErr(r);
                  refresh(true);
                }).catch(ignoreAuth);
              } }, 'Revoke'))));
        });
      });
    },

    queue: function (force) {
      return Promise.all([call('GET', '/admin/queue/stats'), call('GET', '/admin/tasks?status=failed&limit=100'),
        call('GET', '/admin/tasks/reanalyses')]).then(function (r) {
        var q = r[0], t = r[1], b = r[2];
        if (q.status !== 200) showErr(q); else if (t.status !== 200) showErr(t); else showErr(null);
        if (q.status === 200 && changed('queue-stats', q.body, force)) fill($('queue-stats'), queueStatNodes(q.body));
        if (b.status === 200 && changed('queue-reanalyses', b.body, force)) {
          var rb = bl.clear($('reanalyses-body'));
          var batches = b.body.items || [];
          if (!batches.length) emptyRow(rb, 7, 'No re-analysis yet.');
          batches.forEach(function (x) {
            var total = Number(x.total) || 0, finished = (Number(x.done) || 0) + (Number(x.failed) || 0);
            rb.appendChild(el('tr', { 'data-testid': 'reanalysis-row', 'data-id': x.batchId },
              el('td', { class: 'small' }, String(x.batchId || '')),
              el('td', null, bl.fmtTime(x.requestedAt)),
              el('td', null, String(x.requestedBy || '')),
              el('td', null, el('progress', { max: String(Math.max(total, 1)), value: String(finished), 'data-testid': 'reanalysis-progress' }),
                ' ' + finished + ' / ' + total),
              el('td', null, String(x.done)), el('td', null, String(x.failed)), el('td', null, String(x.changedVerdict))));
          });
        }
        if (t.status !== 200 || !changed('queue-tasks', t.body, force)) return;
        var tbody = bl.clear($('failed-body'));
        var items = t.body.items || [];
        $('retry-all').disabled = !items.length;
        if (!items.length) emptyRow(tbody, 6, 'No failed tasks.');
        items.forEach(function (task) {
          tbody.appendChild(el('tr', { 'data-testid': 'failed-task-row', 'data-id': task.taskId },
            el('td', { class: 'small' }, String(task.taskId || '')),
            el('td', null, bl.fmtTime(task.submittedAt)),
            el('td', null, String(task.attempts == null ? '' : task.attempts)),
            el('td', null, task.callerNumber ? String(task.callerNumber) : '–'),
            el('td', null, task.error ? String(task.error) : '–'),
            el('td', null, el('button', { type: 'button', class: 'btn-small', 'data-testid': 'task-retry',
              onclick: function (ev) {
                ev.target.disabled = true;
                call('POST', '/admin/tasks/' + encodeURIComponent(task.taskId) + '/retry').then(function (res) {
                  if (res.status === 202 || res.status === 200) flash('Task requeued.'); else showErr(res);
                  refresh(true);
                }).catch(ignoreAuth);
              } }, 'Retry'))));
        });
      });
    }
  };

  /* ---------- pending review cards ---------- */
  function pendingCard(u) {
    var media = el('div', { class: 'pending-media' });
    var selfie = bl.safeMediaUrl(u.userSelfie), video = bl.safeMediaUrl(u.userVideo);
    if (selfie) { var img = el('img', { alt: 'Selfie', loading: 'lazy', referrerpolicy: 'no-referrer', 'data-testid': 'pending-selfie' }); img.src = selfie; media.appendChild(img); }
    if (video) { var v = el('video', { controls: true, preload: 'metadata', 'data-testid': 'pending-video' }); v.src = video; media.appendChild(v); }
    /* Coordination flags: a warning block, and each report they name marked "flagged". */
    var flags = Array.isArray(u.coordination) ? u.coordination : [];
    var flagged = {};          // reportId → kinds that name it
    flags.forEach(function (f) {
      (f.reportIds || []).forEach(function (id) { (flagged[id] = flagged[id] || []).push(coordinationKind(f.kind)); });
    });
    var warning = flags.length ? el('div', { class: 'coordination-warning', role: 'note', 'data-testid': 'pending-coordination' },
      el('strong', null, 'Possible coordinated reporting:'),
      el('ul', null, flags.map(function (f) {
        return el('li', { 'data-testid': 'coordination-flag', 'data-kind': f.kind ? String(f.kind) : null },
          coordinationKind(f.kind) + ': ' + (f.detail ? String(f.detail) : ''));
      }))) : null;
    var reports = el('tbody');
    (u.reports || []).forEach(function (r) {
      var kinds = r.reportId ? flagged[r.reportId] : null;
      var w = (r.weight === undefined || r.weight === null || r.weight === '') ? 1 : Number(r.weight);
      var marks = [];
      if (kinds) marks.push(el('span', { class: 'badge badge-warn', 'data-testid': 'report-flagged', title: 'Named by: ' + kinds.join(', ') }, 'flagged'));
      if (w !== 1) marks.push(el('span', { class: 'badge', 'data-testid': 'report-weight', title: 'What this report counted towards the auto-ban threshold' },
        'weight ' + (isNaN(w) ? String(r.weight) : String(Math.round(w * 100) / 100))));
      reports.appendChild(el('tr', { 'data-testid': 'pending-report', 'data-report-id': r.reportId ? String(r.reportId) : null,
        class: kinds ? 'flagged' : null, 'data-flagged': kinds ? 'true' : null },
        el('td', null, r.reporterName ? String(r.reporterName) : '', el('div', { class: 'muted small' }, String(r.reporterUserId || '')),
          marks.length ? el('div', { class: 'report-marks' }, marks) : null),
        el('td', null, r.reporterIp ? String(r.reporterIp) : '–'),
        el('td', null, r.reason ? String(r.reason) : '–'),
        el('td', null, bl.fmtTime(r.timestamp))));
    });
    var card = el('article', { class: 'card', 'data-testid': 'pending-user', 'data-user-id': u.userId },
      el('h3', { 'data-testid': 'pending-name' }, u.userName ? String(u.userName) : 'Unnamed user'),
      el('div', { class: 'muted small' }, 'User id: ' + String(u.userId)),
      warning,
      media,
      el('dl', { class: 'kv' },
        el('dt', null, 'Ban'), el('dd', null, badge(u.banStatus || 'temporary')),
        el('dt', null, 'Banned at'), el('dd', null, u.bannedAt ? bl.fmtTime(u.bannedAt) : '–'),
        el('dt', null, 'Reason'), el('dd', null, u.bannedReason ? String(u.bannedReason) : '–'),
        el('dt', null, 'Reports'), el('dd', { 'data-testid': 'pending-report-count' }, String(u.reportCount || 0)),
        el('dt', null, 'Review'), el('dd', null, u.reviewStatus ? String(u.reviewStatus) : '–')),
      el('h3', { style: 'margin-top:12px' }, 'Reports'),
      el('div', { class: 'table-wrap' }, el('table', null,
        el('thead', null, el('tr', null, el('th', null, 'Reporter'), el('th', null, 'IP'), el('th', null, 'Reason'), el('th', null, 'Time'))),
        reports)));
    var err = el('div', { class: 'form-error' });
    var actions = el('div', { class: 'actions' });
    function decide(decision) {
      return function () {
        Array.prototype.forEach.call(actions.querySelectorAll('button'), function (b) { b.disabled = true; });
        call('POST', '/report/review/' + encodeURIComponent(u.userId), { decision: decision }).then(function (res) {
          if (res.status !== 200) {
            err.textContent = bl.errorMessage(res);
            Array.prototype.forEach.call(actions.querySelectorAll('button'), function (b) { b.disabled = false; });
            return;
          }
          flash((res.body && res.body.message) ? String(res.body.message) : 'Decision saved.');
          refresh(true);
        }).catch(ignoreAuth);
      };
    }
    actions.appendChild(el('button', { type: 'button', class: 'btn-danger', 'data-testid': 'review-permanent', onclick: decide('permanent') }, 'Permanent ban'));
    actions.appendChild(el('button', { type: 'button', class: 'btn-ok', 'data-testid': 'review-vindicate', onclick: decide('vindicated') }, 'Vindicate'));
    card.appendChild(actions);
    card.appendChild(err);
    return card;
  }

  function phoneAction(method, path, okMessage) {
    call(method, path).then(function (res) {
      if (res.status >= 200 && res.status < 300) flash(okMessage); else showErr(res);
      refresh(true);
    }).catch(ignoreAuth);
  }

  /* ---------- appeals and number disputes: decision queues ---------- */
  function coordinationKind(kind) { return kind === 'same_subnet' ? 'Same subnet' : kind === 'burst' ? 'Burst' : String(kind || 'Flag'); }
  function setDisabled(nodes, on) { Array.prototype.forEach.call(nodes, function (b) { b.disabled = on; }); }
  var drafts = {};            // note textarea id → text typed so far (survives the 5 s re-render)

  function loadQueue(q, force) {
    var status = $(q.prefix + '-status').value;
    var qs = '?status=' + encodeURIComponent(status) + '&limit=20' + (q.pager.cursor() ? '&cursor=' + encodeURIComponent(q.pager.cursor()) : '');
    return call('GET', q.path + qs).then(function (res) {
      if (res.status !== 200) { showErr(res); return; }
      showErr(null);
      q.pager.setNext(res.body.nextCursor);
      if (!changed(q.prefix, res.body, force)) return;
      var list = $(q.prefix + '-list');
      // A note being typed keeps its focus and caret through the re-render.
      var active = document.activeElement, focusId = null, selStart = 0, selEnd = 0;
      if (active && active.tagName === 'TEXTAREA' && active.id && list.contains(active)) { focusId = active.id; selStart = active.selectionStart; selEnd = active.selectionEnd; }
      bl.clear(list);
      var items = res.body[q.listKey] || [];
      var which = status === 'all' ? '' : status + ' ';
      $(q.prefix + '-count').textContent = items.length ? items.length + (res.body.nextCursor ? '+' : '') + ' ' + which + q.noun + '(s).' : '';
      if (!items.length) { list.appendChild(el('div', { class: 'card empty', 'data-testid': q.prefix + '-empty' }, 'No ' + which + q.noun + 's.')); return; }
      items.forEach(function (item) { list.appendChild(queueCard(q, item)); });
      var t = focusId && $(focusId);
      if (t) { t.focus(); try { t.setSelectionRange(selStart, selEnd); } catch (e) { /* ignore */ } }
    });
  }

  function queueCard(q, item) {
    var id = String(item[q.idKey]);
    var card = el('article', { class: 'card', 'data-testid': q.one, 'data-id': id, 'data-status': item.status ? String(item.status) : null },
      q.head(item),
      el('dl', { class: 'kv' },
        el('dt', null, 'Status'), el('dd', { 'data-testid': q.one + '-status' }, badge(item.status || '')),
        q.facts(item),
        el('dt', null, 'Submitted'), el('dd', null, bl.fmtTime(item.submittedAt)),
        item.decidedAt ? [el('dt', null, 'Decided'), el('dd', { 'data-testid': q.one + '-decided' },
          bl.fmtTime(item.decidedAt) + (item.decidedBy ? ' by ' + String(item.decidedBy) : ''))] : null,
        item.note ? [el('dt', null, 'Note'), el('dd', { 'data-testid': q.one + '-note-shown' }, String(item.note))] : null),
      el('h3', { style: 'margin-top:12px' }, q.textHeading),
      el('div', { class: 'appeal-text', 'data-testid': q.one + '-text' }, String(item.text || '')));
    if (item.status !== 'pending') return card;

    var noteId = q.prefix + '-note-' + id;
    var note = el('textarea', { id: noteId, name: 'note', maxlength: '1000', rows: '3', 'data-testid': q.one + '-note',
      oninput: function () { drafts[noteId] = note.value; } });
    note.value = drafts[noteId] || '';
    var err = el('div', { class: 'form-error', role: 'alert', 'data-testid': q.one + '-error' });
    var actions = el('div', { class: 'actions' });
    var form = el('form', { class: 'decision-form', novalidate: true, onsubmit: function (ev) { ev.preventDefault(); } },
      el('div', { class: 'field' },
        el('label', { for: noteId }, q.noteLabel + ' ', el('span', { class: 'muted' }, '(optional)')),
        note,
        el('div', { class: 'hint' }, 'Sent with the outcome. At most 1000 characters.')),
      actions, err);
    function decide(decision) {
      return function () {
        var buttons = actions.querySelectorAll('button');
        setDisabled(buttons, true);
        bl.clearErrors(form);
        var body = { decision: decision }, text = note.value.trim();
        if (text) body.note = text;
        call('POST', q.path + '/' + encodeURIComponent(id) + '/decision', body).then(function (res) {
          if (res.status === 200) {
            delete drafts[noteId];
            flash(q.outcome(res.body || {}, item));
            refresh(true);
            return;
          }
          if (res.status === 409 || res.status === 404) { flash(bl.errorMessage(res)); refresh(true); return; }   // decided elsewhere: the list is stale
          setDisabled(buttons, false);
          if (res.body && res.body.error === 'note_too_long') bl.showError(note, bl.errorMessage(res));
          else err.textContent = bl.errorMessage(res);
        }).catch(ignoreAuth);
      };
    }
    actions.appendChild(el('button', { type: 'button', class: 'btn-secondary', 'data-testid': q.one + '-uphold', onclick: decide('uphold') }, 'Uphold'));
    actions.appendChild(el('button', { type: 'button', class: 'btn-ok', 'data-testid': q.one + '-overturn', onclick: decide('overturn') }, q.overturnLabel));
    card.appendChild(form);
    return card;
  }

  var appealsPager = pager('appeals-prev', 'appeals-next');
  var disputesPager = pager('disputes-prev', 'disputes-next');
  var appealsQueue = {
    prefix: 'appeals', one: 'appeal', noun: 'appeal', path: '/admin/appeals', listKey: 'appeals', idKey: 'appealId', pager: appealsPager,
    textHeading: 'Appeal', noteLabel: 'Note to the user', overturnLabel: 'Overturn (lift ban)',
    head: function (a) {
      return [el('h3', { 'data-testid': 'appeal-name' }, a.userName ? String(a.userName) : 'Unnamed user'),
        el('div', { class: 'muted small' }, 'User id: ' + String(a.userId))];
    },
    facts: function (a) {
      return [el('dt', null, 'Ban'), el('dd', { 'data-testid': 'appeal-ban-status' }, badge(a.banStatus || 'none')),
        el('dt', null, 'Banned at'), el('dd', null, a.bannedAt ? bl.fmtTime(a.bannedAt) : '–'),
        el('dt', null, 'Reason'), el('dd', null, a.bannedReason ? String(a.bannedReason) : '–'),
        el('dt', null, 'Reports'), el('dd', { 'data-testid': 'appeal-report-count' }, String(a.reportCount || 0))];
    },
    outcome: function (b) {
      if (b.status === 'overturned') {
        var ips = Array.isArray(b.ipsLifted) ? b.ipsLifted : [];
        return 'Overturned — ' + (b.banStatus === 'vindicated' || !b.banStatus ? 'ban lifted' : 'ban status now ' + b.banStatus) + '; ' +
          (ips.length ? 'IPs unbanned: ' + ips.join(', ') : 'no IPs unbanned') + '.';
      }
      return 'Upheld — the ban stays' + (b.banStatus ? ' (' + b.banStatus + ')' : '') + '.';
    }
  };
  var disputesQueue = {
    prefix: 'disputes', one: 'dispute', noun: 'dispute', path: '/admin/phone-disputes', listKey: 'disputes', idKey: 'disputeId', pager: disputesPager,
    textHeading: 'Dispute', noteLabel: 'Note to the disputer', overturnLabel: 'Overturn (unlist number)',
    head: function (d) { return el('h3', { 'data-testid': 'dispute-number' }, String(d.phoneNumber || '')); },
    facts: function (d) {
      return [el('dt', null, 'Number'), el('dd', { 'data-testid': 'dispute-number-status' }, badge(d.numberStatus || 'unknown')),
        el('dt', null, 'Approved reports'), el('dd', { 'data-testid': 'dispute-approved-reports' }, String(d.approvedReports || 0))];
    },
    outcome: function (b, d) {
      var number = String(b.phoneNumber || d.phoneNumber || '');
      if (b.status === 'overturned') {
        var n = Array.isArray(b.clearedReports) ? b.clearedReports.length : 0;
        return 'Overturned — ' + number + ' unlisted; ' + n + ' approved report(s) cleared.';
      }
      return 'Upheld — ' + number + ' stays listed.';
    }
  };
  ['appeals', 'disputes'].forEach(function (k) {
    var pg = k === 'appeals' ? appealsPager : disputesPager;
    $(k + '-filter').addEventListener('submit', function (ev) { ev.preventDefault(); pg.reset(); refresh(true); });
    $(k + '-status').addEventListener('change', function () { pg.reset(); refresh(true); });
  });

  /* ---------- paging ---------- */
  function pager(prevId, nextId) {
    var stack = [null], i = 0, next = null;
    var p = {
      cursor: function () { return stack[i]; },
      setNext: function (c) { next = c || null; $(nextId).disabled = !next; $(prevId).disabled = i === 0; },
      reset: function () { stack = [null]; i = 0; next = null; }
    };
    $(nextId).addEventListener('click', function () { if (!next) return; stack = stack.slice(0, i + 1); stack.push(next); i++; refresh(true); });
    $(prevId).addEventListener('click', function () { if (i > 0) { i--; refresh(true); } });
    return p;
  }
  var reportsPager = pager('reports-prev', 'reports-next');
  var pendingPager = pager('pending-prev', 'pending-next');
  var phonesPager = pager('phones-prev', 'phones-next');
  $('reports-filter').addEventListener('submit', function (ev) { ev.preventDefault(); reportsPager.reset(); refresh(true); });
  $('phones-filter').addEventListener('submit', function (ev) { ev.preventDefault(); phonesPager.reset(); refresh(true); });
  $('phones-status').addEventListener('change', function () { phonesPager.reset(); refresh(true); });

  /* ---------- workers: register ---------- */
  $('worker-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var form = $('worker-form');
    bl.clearErrors(form);
    $('worker-form-error').textContent = '';
    var name = $('worker-name').value.trim();
    if (!name) { bl.showError('worker-name', 'Give the worker a name.'); return; }
    call('POST', '/admin/workers', { name: name }).then(function (res) {
      if (res.status !== 201 && res.status !== 200) {
        var code = res.body && res.body.error;
        if (code === 'conflict' || code === 'invalid_body' || code === 'invalid_name' || code === 'worker_exists') bl.showError('worker-name', bl.errorMessage(res));
        else $('worker-form-error').textContent = bl.errorMessage(res);
        return;
      }
      $('worker-name').value = '';
      $('worker-token-name').textContent = String(res.body.name || name);
      $('worker-token').value = String(res.body.workerToken || '');
      $('worker-token-wrap').hidden = false;
      $('worker-token').select();
      refresh(true);
    }).catch(ignoreAuth);
  });
  $('worker-token-copy').addEventListener('click', function () {
    var input = $('worker-token');
    var done = function () { $('worker-token-copy').textContent = 'Copied'; setTimeout(function () { $('worker-token-copy').textContent = 'Copy'; }, 2000); };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(input.value).then(done, function () { input.select(); document.execCommand('copy'); done(); });
    else { input.select(); document.execCommand('copy'); done(); }
  });
  $('worker-token-hide').addEventListener('click', function () { $('worker-token').value = ''; $('worker-token-wrap').hidden = true; });

  /* ---------- queue: retry all ---------- */
  $('retry-all').addEventListener('click', function () {
    $('retry-all').disabled = true;
    call('POST', '/admin/tasks/retry-all-failed').then(function (res) {
      if (res.status === 200) flash('Requeued ' + (res.body && res.body.requeued != null ? res.body.requeued : 0) + ' task(s).'); else showErr(res);
      refresh(true);
    }).catch(ignoreAuth);
  });

  /* ---------- queue: re-analysis ---------- */
  $('reanalyse-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var body = {};
    var v = $('reanalyse-version').value.trim(); if (v) body.analyzerVersionBelow = v;
    var verdict = $('reanalyse-verdict').value; if (verdict) body.verdict = verdict;
    var from = $('reanalyse-from').value; if (from) body.from = from + 'T00:00:00Z';
    var to = $('reanalyse-to').value; if (to) body.to = to + 'T00:00:00Z';
    $('reanalyse-error').textContent = '';
    call('POST', '/admin/tasks/reanalyse', body).then(function (res) {
      if (res.status === 202) flash('Re-analysing ' + res.body.requested + ' of ' + res.body.matched + ' matching task(s).');
      else $('reanalyse-error').textContent = bl.errorMessage(res);
      refresh(true);
    }).catch(ignoreAuth);
  });

  window.addEventListener('hashchange', function () { var t = tabFromHash(); if (t && t !== currentTab && token) selectTab(t); });

  if (token) showApp(); else showLogin();
})();
