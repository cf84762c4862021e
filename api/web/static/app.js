/* blacklist — shared helpers, exported on window.bl. Vanilla JS, no dependencies. */
(function () {
  'use strict';
  var API_BASE = '/api/v1';

  /* fetch wrapper: resolves to {status, body}; never rejects. body is parsed JSON, text, or null. */
  function api(method, path, body, token) {
    var headers = { 'Accept': 'application/json' };
    var init = { method: method, headers: headers, credentials: 'same-origin' };
    if (body !== undefined && body !== null) {
      if (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        init.body = body.toString();
      } else {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
    }
    if (token) headers['Authorization'] = 'Bearer ' + token;
    var url = /^https?:\/\//.test(path) ? path : API_BASE + path;
    return fetch(url, init).then(function (res) {
      return res.text().then(function (text) {
        var parsed = null;
        if (text) { try { parsed = JSON.parse(text); } catch (e) { parsed = text; } }
        if (res.status >= 400 && (parsed === null || typeof parsed !== 'object')) {
          parsed = { error: 'http_' + res.status, message: (typeof parsed === 'string' && parsed.length < 300 && parsed) || ('Request failed (HTTP ' + res.status + ').') };
        }
        return { status: res.status, body: parsed, headers: res.headers };
      });
    }, function () {
      return { status: 0, body: { error: 'network_error', message: 'Network error: could not reach the server.' } };
    });
  }

  /* Human message of an error answer, with Retry-After when present. */
  function errorMessage(res) {
    var b = res && res.body;
    var msg = (b && typeof b === 'object' && b.message) ? String(b.message) : 'Request failed' + (res && res.status ? ' (HTTP ' + res.status + ')' : '') + '.';
    var ra = res && res.headers && res.headers.get && res.headers.get('Retry-After');
    if (ra && (res.status === 429 || res.status === 503)) msg += ' Try again in ' + ra + ' s.';
    return msg;
  }

  /* el('div', {class: 'x', 'data-testid': 'y', onclick: fn}, 'text', otherNode, [more]) — text is always a text node. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') { node.textContent = String(v); return; }
        if (k === 'innerHTML' || k === 'outerHTML') throw new Error('el(): HTML is not allowed');
        if (k.slice(0, 2) === 'on' && typeof v === 'function') { node.addEventListener(k.slice(2), v); return; }
        if (k === 'class' || k === 'className') { node.className = String(v); return; }
        if (k === 'src' || k === 'href') {
          var s = String(v);
          if (!/^(https?:\/\/|\/(?!\/)|#|\?|blob:)/i.test(s)) return; // no javascript:, data: …
          node[k] = s; return;
        }
        if (v === true) { node.setAttribute(k, ''); if (k in node) { try { node[k] = true; } catch (e) { /* ignore */ } } return; }
        node.setAttribute(k, String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    if (typeof child === 'object' && child.nodeType) { node.appendChild(child); return; }
    node.appendChild(document.createTextNode(String(child)));
  }
  function clear(node) { while (node && node.firstChild) node.removeChild(node.firstChild); return node; }

  /* Only absolute http(s) URLs are used for user media. */
  function safeMediaUrl(u) {
    if (typeof u !== 'string') return null;
    u = u.trim();
    return /^https?:\/\//i.test(u) ? u : null;
  }

  /* epoch ms (number or numeric string) or RFC 3339 → local date-time text. */
  function fmtTime(v) {
    if (v === null || v === undefined || v === '') return '';
    var d = (typeof v === 'number' || /^\d+$/.test(String(v))) ? new Date(Number(v)) : new Date(String(v));
    if (isNaN(d.getTime())) return String(v);
    try { return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }); } catch (e) { return d.toLocaleString(); }
  }
  function fmtDuration(sec) {
    if (sec === null || sec === undefined || isNaN(sec)) return '–';
    sec = Math.max(0, Math.round(Number(sec)));
    if (sec < 60) return sec + ' s';
    var m = Math.floor(sec / 60), s = sec % 60;
    if (m < 60) return m + ' min' + (s ? ' ' + s + ' s' : '');
    var h = Math.floor(m / 60);
    return h + ' h ' + (m % 60) + ' min';
  }
  function fmtBytes(n) {
    n = Number(n) || 0;
    if (n >= 1048576) return (n / 1048576).toFixed(n % 1048576 ? 1 : 0) + ' MiB';
    if (n >= 1024) return Math.round(n / 1024) + ' KiB';
    return n + ' bytes';
  }

  function resolve(target) {
    if (!target) return null;
    if (typeof target === 'string') return document.getElementById(target) || document.querySelector(target);
    return target;
  }

  /* showError(fieldOrForm, message): next to a field (its "<id>-error" element), or in a form's .form-error box. */
  function showError(target, message) {
    var node = resolve(target);
    if (!node) return;
    var text = message ? String(message) : '';
    if (node.tagName === 'FORM') {
      var box = node.querySelector('.form-error');
      if (!box) { box = el('div', { class: 'form-error', role: 'alert' }); node.insertBefore(box, node.firstChild); }
      box.textContent = text;
      if (text) box.scrollIntoView && box.scrollIntoView({ block: 'nearest' });
      return;
    }
    if (node.classList && (node.classList.contains('form-error') || node.classList.contains('field-error'))) { node.textContent = text; return; }
    var errId = (node.id || '') + '-error';
    var errNode = node.id ? document.getElementById(errId) : null;
    if (!errNode) {
      errNode = el('div', { class: 'field-error', id: node.id ? errId : null });
      node.parentNode.insertBefore(errNode, node.nextSibling);
    }
    errNode.textContent = text;
    if (node.classList) node.classList.toggle('invalid', !!text);
    if (text) { node.setAttribute('aria-invalid', 'true'); if (node.id) node.setAttribute('aria-describedby', errId); }
    else node.removeAttribute('aria-invalid');
  }
  function clearErrors(form) {
    form = resolve(form);
    if (!form) return;
    Array.prototype.forEach.call(form.querySelectorAll('.field-error, .form-error'), function (n) { n.textContent = ''; });
    Array.prototype.forEach.call(form.querySelectorAll('.invalid'), function (n) { n.classList.remove('invalid'); n.removeAttribute('aria-invalid'); });
  }

  /* Show an API error: map its code to a field via `map` ({code: fieldId}), else the form-level box. */
  function showApiError(form, res, map) {
    var code = res && res.body && res.body.error;
    var field = map && code && map[code];
    showError(field || form, errorMessage(res));
  }

  /* Turnstile token from the widget's hidden input (empty string when absent). */
  function turnstileToken(scope) {
    var root = resolve(scope) || document;
    var input = root.querySelector('input[name="cf-turnstile-response"]') || document.querySelector('input[name="cf-turnstile-response"]');
    return input ? input.value : '';
  }
  function resetTurnstile() {
    try { if (window.turnstile && typeof window.turnstile.reset === 'function') window.turnstile.reset(); } catch (e) { /* ignore */ }
  }

  window.bl = {
    API_BASE: API_BASE, api: api, el: el, clear: clear, fmtTime: fmtTime, fmtDuration: fmtDuration, fmtBytes: fmtBytes,
    showError: showError, clearErrors: clearErrors, showApiError: showApiError, errorMessage: errorMessage,
    safeMediaUrl: safeMediaUrl, turnstileToken: turnstileToken, resetTurnstile: resetTurnstile
  };
})();
