/* Call check: upload or record audio → presigned PUT → task → live status over SSE → verdict. */
(function () {
  'use strict';
  var bl = window.bl;
  var $ = function (id) { return document.getElementById(id); };
  var root = $('check-app');
  if (!root) return;

  var maxBytes = Number(root.getAttribute('data-max-bytes')) || 25 * 1024 * 1024;
  var form = $('check-form'), fileInput = $('audio-file'), submitBtn = $('check-submit');
  var progressWrap = $('upload-progress-wrap'), progress = $('upload-progress');
  var uploadView = $('upload-view'), statusView = $('status-view');
  var recStart = $('record-start'), recStop = $('record-stop'), recStatus = $('record-status'), recPreview = $('record-preview');

  var EXT_TYPES = { wav: 'audio/wav', mp3: 'audio/mpeg', ogg: 'audio/ogg', oga: 'audio/ogg', opus: 'audio/ogg', webm: 'audio/webm',
    m4a: 'audio/mp4', mp4: 'audio/mp4', flac: 'audio/flac', aac: 'audio/aac' };

  var recorded = null;      // Blob from MediaRecorder
  var uploaded = null;      // {blob, uploadId} once a PUT succeeded (reused when only the task submit failed)
  var busy = false;
  var stream = null, pollTimer = null, currentTaskId = null, done = false;

  $('max-size').textContent = bl.fmtBytes(maxBytes);

  function currentBlob() {
    if (fileInput.files && fileInput.files[0]) return fileInput.files[0];
    return recorded;
  }
  function contentTypeOf(blob) {
    var t = (blob.type || '').split(';')[0].trim().toLowerCase();
    if (t === 'video/webm') t = 'audio/webm';
    if (t === 'video/mp4') t = 'audio/mp4';
    if (!t || t.indexOf('audio/') !== 0) {
      var m = /\.([a-z0-9]+)$/i.exec(blob.name || '');
      if (m && EXT_TYPES[m[1].toLowerCase()]) t = EXT_TYPES[m[1].toLowerCase()];
    }
    return t;
  }

  /* ---------- recording ---------- */
  var recorder = null, chunks = [], recTimer = null, recStartedAt = 0;
  if (!(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
    recStart.disabled = true;
    recStatus.textContent = 'Recording is not supported in this browser.';
  }
  recStart.addEventListener('click', function () {
    bl.showError(fileInput, '');
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (media) {
      var opts = {};
      if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported('audio/webm')) opts.mimeType = 'audio/webm';
      try { recorder = new MediaRecorder(media, opts); } catch (e) { recorder = new MediaRecorder(media); }
      chunks = [];
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
      recorder.onstop = function () {
        media.getTracks().forEach(function (t) { t.stop(); });
        clearInterval(recTimer);
        var type = (recorder.mimeType || 'audio/webm').split(';')[0] || 'audio/webm';
        if (type.indexOf('audio/') !== 0) type = 'audio/webm';
        recorded = new Blob(chunks, { type: type });
        recorded.name = 'recording.' + (type.split('/')[1] || 'webm');
        fileInput.value = '';
        recPreview.src = URL.createObjectURL(recorded);
        recPreview.hidden = false;
        recStatus.textContent = 'Recorded ' + bl.fmtDuration((Date.now() - recStartedAt) / 1000) + ' (' + bl.fmtBytes(recorded.size) + '). It will be analyzed instead of a file.';
        recStart.hidden = false; recStop.hidden = true;
      };
      recorder.start(1000);
      recStartedAt = Date.now();
      recStart.hidden = true; recStop.hidden = false;
      recStatus.textContent = 'Recording… 0 s';
      recTimer = setInterval(function () { recStatus.textContent = 'Recording… ' + bl.fmtDuration((Date.now() - recStartedAt) / 1000); }, 500);
    }, function (err) {
      recStatus.textContent = '';
      bl.showError(fileInput, 'Could not access the microphone' + (err && err.message ? ': ' + err.message : '.'));
    });
  });
  recStop.addEventListener('click', function () { if (recorder && recorder.state !== 'inactive') recorder.stop(); });
  fileInput.addEventListener('change', function () {
    bl.showError(fileInput, '');
    if (fileInput.files && fileInput.files[0]) {
      recorded = null; recPreview.hidden = true; recStatus.textContent = '';
      if (fileInput.files[0].size > maxBytes) bl.showError(fileInput, 'This file is larger than ' + bl.fmtBytes(maxBytes) + '.');
    }
  });

  /* ---------- upload + submit ---------- */
  function setBusy(b, label) {
    busy = b;
    submitBtn.disabled = b;
    submitBtn.textContent = b ? (label || 'Working…') : 'Analyze call';
  }
  var ERR_FIELDS = {
    unsupported_media_type: 'audio-file', payload_too_large: 'audio-file', invalid_length: 'audio-file', upload_exists: 'audio-file',
    upload_missing: 'audio-file', upload_mismatch: 'audio-file',
    invalid_email: 'email', invalid_phone_number: 'caller-number',
    captcha_failed: $('turnstile-error') ? 'turnstile-error' : null
  };
  function fail(res) {
    bl.showApiError(form, res, ERR_FIELDS);
    bl.resetTurnstile();
    setBusy(false);
  }

  function putFile(ticket, blob) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(ticket.method || 'PUT', ticket.url, true);
      var headers = ticket.headers || {};
      Object.keys(headers).forEach(function (name) {
        if (name.toLowerCase() === 'content-length') return;
        try { xhr.setRequestHeader(name, headers[name]); } catch (e) { /* header the browser forbids */ }
      });
      progressWrap.hidden = false;
      progress.value = 0;
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) progress.value = Math.round(e.loaded / e.total * 100); };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) { progress.value = 100; resolve({ ok: true }); }
        else resolve({ ok: false, message: 'Upload failed (HTTP ' + xhr.status + '). Please try again.' });
      };
      xhr.onerror = function () { resolve({ ok: false, message: 'Upload failed: network error. Please try again.' }); };
      xhr.onabort = function () { resolve({ ok: false, message: 'Upload was cancelled.' }); };
      xhr.send(blob);
    });
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (busy) return;
    bl.clearErrors(form);
    var blob = currentBlob();
    if (!blob) { bl.showError(fileInput, 'Choose an audio file or record the call first.'); return; }
    if (!blob.size) { bl.showError(fileInput, 'The file is empty.'); return; }
    if (blob.size > maxBytes) { bl.showError(fileInput, 'This file is larger than ' + bl.fmtBytes(maxBytes) + '.'); return; }
    var type = contentTypeOf(blob);
    if (!type) { bl.showError(fileInput, 'Unrecognized file type: choose an audio file (WAV, MP3, OGG, WebM, M4A, FLAC, AAC).'); return; }
    var email = $('email').value.trim(), caller = $('caller-number').value.trim();
    var token = bl.turnstileToken(form);

    var step;
    if (uploaded && uploaded.blob === blob) {
      step = Promise.resolve(uploaded.uploadId);
    } else {
      uploaded = null;
      setBusy(true, 'Preparing upload…');
      step = bl.api('POST', '/client/uploads/presigned-url', { contentType: type, contentLength: blob.size, turnstileToken: token })
        .then(function (res) {
          if (res.status !== 201 && res.status !== 200) { fail(res); return null; }
          var ticket = res.body;
          setBusy(true, 'Uploading…');
          return putFile(ticket, blob).then(function (r) {
            if (!r.ok) { bl.showError(form, r.message); progressWrap.hidden = true; bl.resetTurnstile(); setBusy(false); return null; }
            uploaded = { blob: blob, uploadId: ticket.uploadId };
            return ticket.uploadId;
          });
        });
    }
    step.then(function (uploadId) {
      if (!uploadId) return;
      setBusy(true, 'Submitting…');
      var body = { uploadId: uploadId, turnstileToken: bl.turnstileToken(form) || token };
      if (email) body.email = email;
      if (caller) body.callerNumber = caller;
      return bl.api('POST', '/client/tasks', body).then(function (res) {
        if (res.status !== 202 && res.status !== 200 && res.status !== 201) {
          var code = res.body && res.body.error;
          if (code === 'upload_missing' || code === 'upload_mismatch') uploaded = null;
          fail(res); return;
        }
        setBusy(false);
        var task = res.body;
        history.replaceState(null, '', '/check/' + encodeURIComponent(task.taskId));
        startWatching(task.taskId, task);
      });
    });
  });

  /* ---------- status view ---------- */
  function show(id, visible) { var n = $(id); if (n) n.hidden = !visible; }

  function startWatching(taskId, initial) {
    currentTaskId = taskId; done = false;
    uploadView.hidden = true; statusView.hidden = false;
    $('task-id').textContent = taskId;
    show('result', false); show('task-failed', false);
    if (initial) render(initial);
    openStream(taskId);
  }

  function stopWatching() {
    if (stream) { stream.close(); stream = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function openStream(taskId) {
    stopWatching();
    if (!window.EventSource) { poll(taskId); return; }
    var es = new EventSource(bl.API_BASE + '/client/tasks/' + encodeURIComponent(taskId) + '/events');
    stream = es;
    es.addEventListener('status', function (e) {
      var task; try { task = JSON.parse(e.data); } catch (x) { return; }
      render(task);
    });
    es.onmessage = function (e) { try { render(JSON.parse(e.data)); } catch (x) { /* ignore */ } };
    es.onerror = function () {
      es.close();
      if (stream === es) stream = null;
      if (!done && currentTaskId === taskId) pollTimer = setTimeout(function () { poll(taskId); }, 1500);
    };
  }

  /* Fallback when the stream can't be used: GET the task every 3 s until terminal. */
  function poll(taskId) {
    pollTimer = null;
    if (done || currentTaskId !== taskId) return;
    bl.api('GET', '/client/tasks/' + encodeURIComponent(taskId)).then(function (res) {
      if (currentTaskId !== taskId) return;
      if (res.status === 200 && res.body) {
        render(res.body);
        // still running: go back to the live stream (if the browser has one)
        if (!done && window.EventSource) { pollTimer = setTimeout(function () { openStream(taskId); }, 3000); return; }
      } else if (res.status === 404) { render({ taskId: taskId, status: 'failed', error: bl.errorMessage(res) }); return; }
      else { $('task-status').textContent = 'reconnecting…'; }
      if (!done) pollTimer = setTimeout(function () { poll(taskId); }, 3000);
    });
  }

  function render(task) {
    if (!task || (task.taskId && currentTaskId && task.taskId !== currentTaskId)) return;
    var status = task.status || 'queued';
    var badge = $('task-status');
    badge.textContent = status;
    badge.className = 'badge status-' + status;
    var queued = status === 'queued';
    Array.prototype.forEach.call(document.querySelectorAll('.queue-info'), function (n) { n.hidden = !queued; });
    $('queue-position').textContent = (queued && task.queuePosition != null) ? String(task.queuePosition) : '–';
    $('estimated-wait').textContent = (queued && task.estimatedWaitSeconds != null) ? '≈ ' + bl.fmtDuration(task.estimatedWaitSeconds) : '–';
    if (task.emailNotification) show('email-notice', true);

    if (status === 'completed') {
      done = true; stopWatching();
      renderResult(task.result || {}, task);
    } else if (status === 'failed') {
      done = true; stopWatching();
      $('task-error').textContent = task.error ? 'The analysis failed: ' + task.error : 'The analysis failed.';
      show('task-failed', true);
      show('result', false);
    }
  }

  function fmtTime(sec) {
    var s = Math.max(0, Math.floor(Number(sec) || 0));
    return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
  }
  var KIND_NAMES = {
    authority_impersonation: 'Posed as an authority', bank_impersonation: 'Posed as your bank',
    company_impersonation: 'Posed as a company', urgency_threat: 'Urgency or threats',
    credential_request: 'Asked for codes or card details', unusual_payment: 'Unusual payment',
    remote_access: 'Remote access to a device', advance_fee: 'Fee before a prize, refund or job',
    secrecy_isolation: 'Secrecy', family_emergency: 'Family emergency', romance_investment: 'Romance or investment',
    warranty_benefits: 'Warranty or benefits offer', caller_number_reported: 'Number reported to us',
    never_asks_for_secrets: 'Says they never ask for codes', call_official_number: 'Points to an official number',
    talks_about_scams: 'Talks about scams', denies_asking: 'Says they won’t ask for it'
  };
  function humanKind(k) { return KIND_NAMES[k] || String(k || 'indicator').replace(/_/g, ' '); }

  /* Appends `text` to `node`, with each evidence phrase (words in order, any punctuation between)
     wrapped in a <mark> that plays that moment of the call. Built from text nodes: never HTML. */
  function highlight(node, text, spans) {
    var marks = [];
    spans.forEach(function (x) {
      var words = String(x.span.text || '').split(/[^A-Za-z0-9\u00C0-\u024F']+/).filter(Boolean);
      if (!words.length) return;
      var re = new RegExp(words.map(function (w) { return w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }).join("[^A-Za-z0-9\u00C0-\u024F']+"), 'i');
      var m = re.exec(text);
      if (m) marks.push({ from: m.index, to: m.index + m[0].length, x: x });
    });
    marks.sort(function (a, b) { return a.from - b.from; });
    var at = 0;
    marks.forEach(function (mk) {
      if (mk.from < at) return;
      node.appendChild(document.createTextNode(text.slice(at, mk.from)));
      var mark = bl.el('mark', { class: mk.x.counter ? 'counter' : 'evidence', 'data-testid': 'evidence-mark', tabindex: '0',
        'data-start': String(mk.x.span.start), title: humanKind(mk.x.kind) + ' · ' + fmtTime(mk.x.span.start) }, text.slice(mk.from, mk.to));
      var go = function () { if (recUrlNow) { try { var pl = $('player'); pl.currentTime = Math.max(0, Number(mk.x.span.start) - 0.2); var p = pl.play(); if (p && p.catch) p.catch(function () {}); } catch (e) { /* not loaded */ } } };
      mark.addEventListener('click', go);
      mark.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
      node.appendChild(mark);
      at = mk.to;
    });
    node.appendChild(document.createTextNode(text.slice(at)));
  }
  var recUrlNow = null;

  function renderResult(r, task) {
    recUrlNow = task && task.recordingUrl;
    var verdict = String(r.verdict || 'inconclusive');
    var v = $('verdict');
    v.textContent = verdict;
    v.className = 'badge verdict verdict-' + verdict.replace(/[^a-z]/gi, '');
    v.setAttribute('data-verdict', verdict);
    var score = Number(r.riskScore);
    var pct = isNaN(score) ? null : Math.round(Math.max(0, Math.min(1, score)) * 100);
    $('risk-score').textContent = pct === null ? '–' : pct + ' %';
    $('risk-bar').style.width = (pct || 0) + '%';

    var expl = $('explanation');
    expl.textContent = r.explanation ? String(r.explanation) : '';
    expl.hidden = !r.explanation;

    /* The player: jump to where each piece of evidence was said. */
    var player = $('player');
    var recUrl = task && task.recordingUrl;
    if (recUrl && /^(https?:\/\/|\/(?!\/))/i.test(String(recUrl))) {
      var src = String(recUrl);
      if (player.getAttribute('src') !== src) player.setAttribute('src', src);
      show('player-wrap', true);
    } else show('player-wrap', false);
    function seek(start) {
      if (!recUrl) return;
      try { player.currentTime = Math.max(0, Number(start) - 0.2); var p = player.play(); if (p && p.catch) p.catch(function () {}); } catch (e) { /* not loaded yet */ }
    }
    function timeButton(span) {
      var b = bl.el('button', { type: 'button', class: 'timecode', 'data-testid': 'span-time', 'data-start': String(span.start),
        title: 'Play from ' + fmtTime(span.start) }, fmtTime(span.start) + '–' + fmtTime(span.end));
      b.addEventListener('click', function () { seek(span.start); });
      return b;
    }

    function indicatorList(node, inds, empty) {
      var list = bl.clear(node);
      if (!inds.length && empty) list.appendChild(bl.el('li', { class: 'muted' }, empty));
      inds.forEach(function (ind) {
        var spans = Array.isArray(ind.spans) ? ind.spans : [];
        list.appendChild(bl.el('li', { 'data-testid': 'indicator', 'data-kind': String(ind.kind || '') },
          bl.el('strong', { 'data-testid': 'indicator-kind' }, humanKind(ind.kind)),
          ind.evidence ? [': ', bl.el('span', { 'data-testid': 'indicator-evidence' }, '“' + String(ind.evidence) + '”')] : null,
          (typeof ind.weight === 'number') ? bl.el('span', { class: 'muted small' }, ' (weight ' + ind.weight.toFixed(2) + ')') : null,
          spans.length ? bl.el('span', { class: 'spans' }, spans.map(function (sp) { return [' ', timeButton(sp)]; })) : null));
      });
    }
    var inds = Array.isArray(r.indicators) ? r.indicators : [];
    indicatorList($('indicators'), inds, 'No scam indicators found.');
    var counter = Array.isArray(r.counterEvidence) ? r.counterEvidence : [];
    indicatorList($('counter'), counter, null);
    show('counter-wrap', counter.length > 0);

    /* The transcript, segment by segment, with the evidence highlighted. */
    var tr = bl.clear($('transcript'));
    var segments = Array.isArray(r.segments) ? r.segments : [];
    var allSpans = [];
    inds.forEach(function (i) { (i.spans || []).forEach(function (sp) { allSpans.push({ span: sp, kind: i.kind, counter: false }); }); });
    counter.forEach(function (i) { (i.spans || []).forEach(function (sp) { allSpans.push({ span: sp, kind: i.kind, counter: true }); }); });
    if (segments.length) {
      segments.forEach(function (seg) {
        var inSeg = allSpans.filter(function (x) { return x.span.start < seg.end + 0.5 && x.span.end > seg.start - 0.5; });
        var p = bl.el('p', { class: 'segment', 'data-testid': 'segment' }, timeButton(seg), ' ');
        highlight(p, String(seg.text || ''), inSeg);
        tr.appendChild(p);
      });
      show('transcript-wrap', true);
    } else if (r.transcript) {
      tr.appendChild(bl.el('p', {}, String(r.transcript)));
      show('transcript-wrap', true);
    } else show('transcript-wrap', false);
    $('language').textContent = r.language ? '(' + String(r.language) + ')' : '';

    /* Earlier results (re-analysis keeps every one). */
    var prev = bl.clear($('previous'));
    var earlier = Array.isArray(task && task.previousResults) ? task.previousResults : [];
    earlier.forEach(function (e) {
      var pr = e.result || {};
      prev.appendChild(bl.el('li', { 'data-testid': 'previous-result' },
        bl.el('span', { class: 'badge verdict verdict-' + String(pr.verdict || '').replace(/[^a-z]/gi, '') }, String(pr.verdict || '?')),
        ' ', bl.el('span', { class: 'muted small' }, (e.completedAt ? bl.fmtTime(e.completedAt) : '') +
          (pr.analyzer && pr.analyzer.version ? ' · ' + String(pr.analyzer.version) : ''))));
    });
    show('previous-wrap', earlier.length > 0);
    var note = $('reanalysis-notice');
    if (task && task.reanalysisPending) { note.textContent = 'This call is being analysed again with the latest analyzer.'; note.hidden = false; }
    else if (earlier.length) { note.textContent = 'This verdict comes from a re-analysis; the earlier results are listed below.'; note.hidden = false; }
    else note.hidden = true;

    var c = r.callerNumber;
    if (c && typeof c === 'object' && c.phoneNumber) {
      $('caller-phone').textContent = String(c.phoneNumber);
      var cs = $('caller-status');
      cs.textContent = String(c.status || 'unknown');
      cs.className = 'badge status-' + String(c.status || 'unknown').replace(/[^a-z]/gi, '');
      show('caller-wrap', true);
    } else show('caller-wrap', false);

    var a = r.analyzer || {};
    $('analyzer').textContent = (a.name ? String(a.name) : 'unknown') + (a.version ? ' ' + String(a.version) : '');
    show('task-failed', false);
    show('result', true);
  }

  function resetToForm() {
    stopWatching();
    currentTaskId = null; done = false;
    history.replaceState(null, '', '/check');
    statusView.hidden = true; uploadView.hidden = false;
    show('email-notice', false);
    progressWrap.hidden = true; progress.value = 0;
    uploaded = null;
    bl.clearErrors(form);
    bl.resetTurnstile();
    setBusy(false);
  }
  $('try-again').addEventListener('click', resetToForm);
  $('check-another').addEventListener('click', function () {
    fileInput.value = ''; recorded = null; recPreview.hidden = true; recStatus.textContent = '';
    resetToForm();
  });

  var initialTask = root.getAttribute('data-task-id');
  if (!initialTask) {
    var m = /^\/check\/([^\/?#]+)/.exec(location.pathname);
    if (m) initialTask = decodeURIComponent(m[1]);
  }
  if (initialTask) startWatching(initialTask, null);
})();
