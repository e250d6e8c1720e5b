/*
 * holdfast web UI. Plain JavaScript, no framework, no build step: the
 * server serves this file as it is (built into its binary). Every datum
 * comes from the HTTP API (docs/api.md) with the bearer token the user
 * signed in with; the page shows actions to admin tokens only, and the
 * server refuses a read token's writes whatever the page does.
 *
 * Nothing here writes HTML from strings: every text goes in with
 * textContent (through h()), so names and messages cannot inject markup,
 * and the Content-Security-Policy allows no inline script anyway.
 */
'use strict';

(function () {
  const KEY = 'holdfast-token';
  const S = {
    token: null,
    role: null,
    view: null,          // {name, arg, load, onEvent}
    events: [],          // the last events of the stream, oldest first
    lastEventId: null,
    streamAbort: null,
    streamUp: false,
    refreshTimer: null,
    loading: false,
    again: false,
    pollTimer: null,
    volumesTimer: null,  // the volumes page's look while a copy is under way
    generation: 0,       // bumped at sign-out: stale work stops
  };
  const MAX_EVENTS = 500;
  const GENERATED = ['recovery', 'decommission'];

  // ------------------------------------------------------------------
  // DOM helpers

  function $(id) { return document.getElementById(id); }

  /*
   * h('tag.class1.class2', {attr: value, onclick: fn, dataset: {...}},
   *   child, ...): children are nodes, strings (text), arrays or null.
   */
  function h(spec, attrs, ...kids) {
    const parts = spec.split('.');
    const el = document.createElement(parts[0]);
    for (const c of parts.slice(1)) el.classList.add(c);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else if (k === 'class') el.classList.add(...String(v).split(/\s+/).filter(Boolean));
        // Through the CSSOM: the policy refuses style attributes.
        else if (k === 'style') el.style.cssText = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, kids);
    return el;
  }

  function append(el, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) append(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }

  function badge(status, title) {
    const s = String(status === null || status === undefined ? 'unknown' : status);
    return h('span.status', { class: 'status ' + s.replace(/[^A-Za-z0-9_-]/g, '_'), title: title || null,
                              dataset: { status: s } }, s);
  }

  function td(label, ...kids) { return h('td', { 'data-label': label }, ...kids); }

  function table(headers, rows, cls) {
    return h('div.table-wrap', null,
      h('table.stack', { class: 'stack ' + (cls || '') },
        h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
        h('tbody', null, rows)));
  }

  function bytes(n) {
    if (n === null || n === undefined) return '-';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + ' ' + u[i];
  }

  function bar(used, total, text) {
    const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
    return h('div', { title: pct + '%' },
      h('div.bar', null, h('span', { style: 'width:' + pct + '%' })),
      h('small.muted', null, text));
  }

  function ago(ms) {
    if (!ms) return '-';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }

  function isAdmin() { return S.role === 'admin'; }

  // An action button: admins only; the class marks it for the tests
  // and for the read-only check.
  function act(label, fn, cls) {
    if (!isAdmin()) return null;
    return h('button.action', { type: 'button', class: 'action ' + (cls || ''), onclick: fn }, label);
  }

  // ------------------------------------------------------------------
  // Messages

  function showError(text) {
    const e = $('error');
    e.textContent = text;
    e.hidden = false;
    $('notice').hidden = true;
  }

  function showNotice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = false;
    $('error').hidden = true;
    clearTimeout(showNotice.t);
    showNotice.t = setTimeout(() => { n.hidden = true; }, 8000);
  }

  function clearError() { $('error').hidden = true; }

  // ------------------------------------------------------------------
  // The API

  class ApiError extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
  }

  // An API error in words: the server's sentence, every reason it gave
  // (refusals, spec diagnostics), and the status for whoever reports it.
  function describe(status, data, what) {
    let text;
    if (data && typeof data === 'object' && data.message) {
      text = data.message;
    } else if (status === 0) {
      text = 'the server cannot be reached';
    } else {
      text = 'the server answered ' + status;
    }
    const lines = [(what ? what + ': ' : '') + text +
                   (status ? ' (' + status + (data && data.error ? ' ' + data.error : '') + ')' : '')];
    if (data && Array.isArray(data.refusals)) {
      for (const r of data.refusals) lines.push('  - ' + r);
    }
    if (data && Array.isArray(data.diagnostics)) {
      for (const d of data.diagnostics) {
        lines.push('  - ' + [d.file, d.line, d.col].filter((x) => x !== undefined && x !== null).join(':') +
                   ': ' + (d.level ? d.level + ': ' : '') + d.message);
      }
    }
    return lines.join('\n');
  }

  /*
   * One request. Resolves {status, data} for 2xx and for the statuses in
   * `accept`; otherwise rejects with an ApiError whose message is in
   * words. A 401 signs out: the token is no longer good.
   */
  async function api(method, path, body, accept, what) {
    const gen = S.generation;
    const headers = { Authorization: 'Bearer ' + S.token };
    const opts = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'unreachable', describe(0, null, what || method + ' ' + path));
    }
    const text = await r.text();
    let data = text;
    if ((r.headers.get('Content-Type') || '').startsWith('application/json')) {
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    }
    if (r.status === 401 && gen === S.generation) {
      signOut('The server does not take this token (401 unauthorized): sign in again.');
    }
    if (!r.ok && !(accept || []).includes(r.status)) {
      throw new ApiError(r.status, data && data.error, describe(r.status, data, what), data);
    }
    return { status: r.status, data };
  }

  function enc(s) { return encodeURIComponent(s); }

  // ------------------------------------------------------------------
  // Signing in

  function storedToken() {
    try {
      return sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
    } catch (e) {
      return null;
    }
  }

  function keepToken(token, remember) {
    try {
      sessionStorage.setItem(KEY, token);
      if (remember) localStorage.setItem(KEY, token);
    } catch (e) { /* storage refused: the token lives in this page only */ }
  }

  function forgetToken() {
    try {
      sessionStorage.removeItem(KEY);
      localStorage.removeItem(KEY);
    } catch (e) { /* nothing kept */ }
  }

  function showSignin(message) {
    $('view').hidden = true;
    $('nav').hidden = true;
    $('who').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    $('token-input').value = '';
    $('token-input').focus();
  }

  function signOut(message) {
    S.generation++;
    S.token = null;
    S.role = null;
    forgetToken();
    stopStream();
    clearInterval(S.pollTimer);
    clearTimeout(S.refreshTimer);
    S.events = [];
    S.lastEventId = null;
    closeModal();
    showSignin(message);
  }

  async function signIn(token) {
    S.token = token;
    let who;
    try {
      who = await api('GET', '/v1/whoami', undefined, [], 'Signing in');
    } catch (e) {
      if (e.status !== 401) {
        forgetToken();
        S.token = null;
        showSignin(e.message);
      }
      return false;
    }
    S.role = who.data.role;
    document.body.dataset.role = S.role;
    $('role').textContent = S.role === 'admin' ? 'admin' : 'read only';
    $('signin').hidden = true;
    $('nav').hidden = false;
    $('who').hidden = false;
    $('view').hidden = false;
    startStream();
    clearInterval(S.pollTimer);
    // The slow fallback: the view refreshes on events, and every few
    // seconds whatever happens (faster while the stream is down).
    S.pollTimer = setInterval(() => {
      if (!S.streamUp || Date.now() - (S.lastLoad || 0) > 10000) scheduleRefresh(0);
    }, 3000);
    route();
    return true;
  }

  // ------------------------------------------------------------------
  // The event stream. EventSource cannot send an Authorization header,
  // so the stream is read with fetch() and parsed here (text/event-stream:
  // "field: value" lines, a blank line ends an event, ":" a comment).

  function stopStream() {
    if (S.streamAbort) S.streamAbort.abort();
    S.streamAbort = null;
    setLive(false);
  }

  function setLive(up) {
    S.streamUp = up;
    const l = $('live');
    l.textContent = up ? 'live' : 'offline';
    l.classList.toggle('on', up);
  }

  async function startStream() {
    stopStream();
    const gen = S.generation;
    const ctl = new AbortController();
    S.streamAbort = ctl;
    const headers = { Authorization: 'Bearer ' + S.token };
    let path = '/v1/events?tail=200';
    if (S.lastEventId !== null) {
      headers['Last-Event-ID'] = S.lastEventId;
      path = '/v1/events';
    }
    try {
      const r = await fetch(path, { headers, signal: ctl.signal, cache: 'no-store' });
      if (r.status === 401) {
        signOut('The server does not take this token (401 unauthorized): sign in again.');
        return;
      }
      if (!r.ok || !r.body) throw new Error('status ' + r.status);
      setLive(true);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
          parseEvent(block);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (gen !== S.generation || S.streamAbort !== ctl) return;
    setLive(false);
    // Reconnect; Last-Event-ID picks up where it stopped.
    setTimeout(() => { if (gen === S.generation && S.streamAbort === ctl) startStream(); }, 2000);
  }

  function parseEvent(block) {
    let id = null;
    let kind = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'event') kind = value;
      else if (field === 'data') data.push(value);
    }
    if (id !== null) S.lastEventId = id;
    if (!data.length) return;
    let ev;
    try { ev = JSON.parse(data.join('\n')); } catch (e) { return; }
    ev.event = kind;
    S.events.push(ev);
    if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
    if (S.view && S.view.onEvent) S.view.onEvent(ev);
  }

  // ------------------------------------------------------------------
  // Views and their refresh

  /*
   * Reloads the current view after delay ms; calls in between merge. A
   * view is not redrawn under the user's typing: while a field in it has
   * the focus, the refresh waits.
   */
  function scheduleRefresh(delay) {
    clearTimeout(S.refreshTimer);
    S.refreshTimer = setTimeout(refresh, delay);
  }

  async function refresh() {
    if (!S.view || !S.token) return;
    const a = document.activeElement;
    if (a && $('view').contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) {
      scheduleRefresh(1500);
      return;
    }
    if (S.loading) { S.again = true; return; }
    S.loading = true;
    const view = S.view;
    const gen = S.generation;
    try {
      const node = await view.load(view.arg);
      if (view === S.view && gen === S.generation && node) {
        $('view').replaceChildren(node);
        S.lastLoad = Date.now();
      }
    } catch (e) {
      if (view === S.view && gen === S.generation && e.status !== 401) showError(e.message);
    } finally {
      S.loading = false;
      if (S.again) { S.again = false; scheduleRefresh(100); }
    }
  }

  const VIEWS = {
    services: { load: loadServices, onEvent: () => scheduleRefresh(400) },
    service: { load: loadService, onEvent: (ev, arg) => { if (!ev.service || ev.service === arg) scheduleRefresh(150); } },
    nodes: { load: loadNodes, onEvent: (ev) => { if (ev.kind === 'node' || ev.kind === 'task') scheduleRefresh(1000); } },
    volumes: { load: loadVolumes, onEvent: () => scheduleRefresh(500) },
    events: { load: loadEvents, onEvent: () => scheduleRefresh(100) },
  };

  function route() {
    if (!S.token) return;
    const hash = location.hash && location.hash.length > 2 ? location.hash.slice(2) : 'services';
    const parts = hash.split('/');
    const name = VIEWS[parts[0]] ? parts[0] : 'services';
    let arg = null;
    try { arg = parts.length > 1 ? decodeURIComponent(parts.slice(1).join('/')) : null; } catch (e) { arg = null; }
    const v = VIEWS[name];
    S.view = { name, arg, load: v.load, onEvent: (ev) => v.onEvent(ev, arg) };
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('current', a.dataset.view === name || (name === 'service' && a.dataset.view === 'services'));
    }
    clearError();
    $('notice').hidden = true;
    $('view').replaceChildren(h('p.muted', null, 'Loading…'));
    scheduleRefresh(0);
  }

  // ------------------------------------------------------------------
  // Services and stacks

  async function loadServices() {
    const [svcs, stacks] = await Promise.all([
      api('GET', '/v1/services', undefined, [], 'Listing services'),
      api('GET', '/v1/stacks', undefined, [404], 'Listing stacks').catch((e) => ({ status: 0, error: e })),
    ]);
    const out = h('div', null);
    if (stacks.status === 200 && stacks.data && Array.isArray(stacks.data.stacks)) {
      out.appendChild(stacksCard(stacks.data.stacks));
    } else if (stacks.error) {
      out.appendChild(h('p.error-text', null, stacks.error.message));
    }
    const rows = svcs.data.map((s) => h('tr', { dataset: { service: s.name } },
      td('Service', h('a', { href: '#/service/' + enc(s.name) }, s.name),
         s.removing ? [' ', badge('removing')] : null),
      td('Plans', Object.entries(s.plans || {}).map(([p, st]) => h('span', { class: 'plan-status' }, p + ' ', badge(st), ' '))),
      td('Tasks', Object.entries(s.tasks || {}).map(([st, n]) => h('span', null, badge(st), ' ' + n + ' '))),
      td('Pods', (s.pod_types || []).map((p) => h('div', null, p.name + ' × ' + p.count +
                                                 (p.overridden ? ' (spec ' + p.spec_count + ')' : '')))),
      td('Config', s.config_id || '-'),
      td('Created', ago(s.created))));
    out.appendChild(h('section.card', { id: 'services' },
      h('div.card-head', null, h('h1', null, 'Services'),
        h('span.muted', null, svcs.data.length + (svcs.data.length === 1 ? ' service' : ' services'))),
      svcs.data.length ? table(['Service', 'Plans', 'Tasks', 'Pods', 'Config', 'Created'], rows, 'services')
                       : h('p.muted', null, 'No service is deployed. Deploy one with `holdfast service deploy -f SPEC`.')));
    return out;
  }

  function stacksCard(stacks) {
    return h('section.card', { id: 'stacks' },
      h('div.card-head', null, h('h1', null, 'Stacks')),
      stacks.length ? stacks.map((st) => h('div', { dataset: { stack: st.name } },
        h('h3', null, st.name + ' ', badge(st.phase)),
        table(['Member', 'Service', 'Phase', 'Depends on'], (st.services || []).map((m) => h('tr', { dataset: { member: m.name, phase: m.phase } },
          td('Member', m.name),
          td('Service', h('a', { href: '#/service/' + enc(m.service || m.name) }, m.service || m.name)),
          td('Phase', badge(m.phase)),
          td('Depends on', (m.depends_on || []).join(', ') || '-')))))) :
        h('p.muted', null, 'No stack is deployed.'));
  }

  async function loadService(name) {
    const base = '/v1/service/' + enc(name);
    const [svc, plans, pods, nodes] = await Promise.all([
      api('GET', '/v1/services/' + enc(name), undefined, [], 'Service ' + name),
      api('GET', base + '/plans', undefined, [], 'Plans of ' + name),
      api('GET', base + '/pod/status', undefined, [], 'Pods of ' + name),
      api('GET', '/v1/nodes', undefined, [], 'Nodes'),
    ]);
    const planDocs = await Promise.all(plans.data.map((p) =>
      api('GET', base + '/plans/' + enc(p), undefined, [417], 'Plan ' + p).then((r) => r.data)
        .catch((e) => ({ name: p, status: 'unknown', phases: [], failed: e.message }))));
    const infos = await Promise.all(pods.data.pods.map((p) => p.placed
      ? api('GET', base + '/pod/' + enc(p.name) + '/info', undefined, [], 'Pod ' + p.name).then((r) => r.data).catch(() => null)
      : Promise.resolve(null)));
    const byNode = {};
    for (const n of nodes.data) byNode[n.id] = n;
    const s = svc.data;

    const head = h('section.card', { id: 'service', dataset: { service: name } },
      h('div.card-head', null,
        h('h1', null, name),
        s.removing ? badge('removing') : null,
        h('span.muted', null, 'configuration ' + (s.config_id || '-') + ', created ' + ago(s.created)),
        h('div.actions', null,
          act('Edit spec…', () => editSpec(name), 'edit'),
          act('Roll back…', () => rollback(name), 'rollback secondary'))));

    const types = h('section.card', { id: 'pod-types' },
      h('h2', null, 'Pod types'),
      table(['Pod type', 'Count', 'Spec count', isAdmin() ? 'Scale' : null].filter(Boolean),
        (s.pod_types || []).map((p) => h('tr', { dataset: { podType: p.name } },
          td('Pod type', p.name),
          td('Count', h('span.count', { dataset: { count: String(p.count) } }, String(p.count)),
             p.overridden ? h('span.muted', null, ' (set over the spec)') : null),
          td('Spec count', String(p.spec_count)),
          isAdmin() ? td('Scale', scaleForm(name, p)) : null)), 'pod-types'));

    const planCards = h('section', { id: 'plans' }, h('h2', null, 'Plans'),
      planDocs.map((p) => planCard(name, p)));

    const podRows = pods.data.pods.map((p, i) => podRow(name, p, infos[i], byNode));
    const podsCard = h('section.card', { id: 'pods' },
      h('h2', null, 'Pods'),
      podRows.length ? table(['Instance', 'Node', 'State', 'Tasks', 'Endpoints', isAdmin() ? 'Actions' : null].filter(Boolean),
                             podRows, 'pods')
                     : h('p.muted', null, 'No pod instance.'));

    const evs = S.events.filter((e) => e.service === name).slice(-15).reverse();
    const evCard = h('section.card', { id: 'service-events' },
      h('h2', null, 'Recent events'),
      evs.length ? h('ul.events', null, evs.map(eventLine)) : h('p.muted', null, 'No event yet.'));
    return h('div', null, head, types, planCards, podsCard, evCard);
  }

  function scaleForm(svc, p) {
    const input = h('input.scale-count', { type: 'number', min: 0, max: 100000, value: String(p.count),
                                           'aria-label': 'New count of ' + p.name });
    const form = h('form.inline.action', { class: 'inline action scale-form', dataset: { pod: p.name } },
      input, h('button.action', { type: 'submit', class: 'action scale' }, 'Scale'),
      p.overridden ? h('button.action', { type: 'button', class: 'action secondary reset',
                                          onclick: () => resetCount(svc, p.name) }, 'Back to spec') : null);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0) {
        showError('The count of ' + p.name + ' must be a whole number, 0 or more; "' + input.value + '" is not.');
        return;
      }
      input.blur();
      await doAction(() => api('PUT', '/v1/service/' + enc(svc) + '/pod-types/' + enc(p.name) + '/count',
                               { count: n }, [], 'Scaling ' + p.name),
                     (r) => changeSummary('Scaled ' + p.name + ' to ' + n, r.data));
    });
    return form;
  }

  function resetCount(svc, pod) {
    doAction(() => api('DELETE', '/v1/service/' + enc(svc) + '/pod-types/' + enc(pod) + '/count',
                       undefined, [], 'Returning ' + pod + ' to its spec\'s count'),
             (r) => changeSummary(pod + ' follows its spec\'s count again', r.data));
  }

  // Runs an action, shows its outcome in words, and refreshes the view.
  async function doAction(fn, summary) {
    try {
      const r = await fn();
      showNotice(summary ? summary(r) : 'Done.');
    } catch (e) {
      if (e.status !== 401) showError(e.message);
    }
    scheduleRefresh(0);
  }

  function changeSummary(what, d) {
    if (!d || typeof d !== 'object') return what + '.';
    if (d.changed === false) return what + ': nothing to change.';
    return what + ': configuration ' + (d.from || '-') + ' → ' + (d.to || '-') +
           (d.plan ? ', plan ' + d.plan + ' runs' : '') + '.';
  }

  // ------------------------------------------------------------------
  // Plans

  function planCard(svc, p) {
    const base = '/v1/service/' + enc(svc) + '/plans/' + enc(p.name);
    const post = (op, query, what) => doAction(
      () => api('POST', base + '/' + op + (query ? '?' + query : ''), undefined, [], what),
      (r) => (r.data && r.data.message) || what + ': done.');
    const never = p.run === 0;
    const params = Object.entries(p.parameters || {});
    const head = h('div.card-head', null,
      h('h3', null, p.name + ' '), badge(p.status),
      h('span.muted', null, (p.strategy || '') + (never ? ', never started' : ', run ' + p.run) +
                            (p.interrupted ? ', paused' : '')),
      h('div.actions', null,
        // recovery and decommission are the scheduler's own plans.
        GENERATED.includes(p.name) ? null
          : act(never ? 'Start…' : 'Start again…', () => startPlan(svc, p), 'start'),
        !never && !p.interrupted && p.status !== 'COMPLETE'
          ? act('Pause', () => post('interrupt', '', 'Pausing ' + p.name), 'pause secondary') : null,
        !never && (p.interrupted || (p.interrupted_phases || []).length)
          ? act('Resume', () => post('continue', '', 'Resuming ' + p.name), 'resume') : null,
        !never && p.status !== 'COMPLETE'
          ? act('Stop', () => confirmThen('Stop plan ' + p.name + '?',
                'Its steps are reset; running tasks are left as they are. Start it again to run it.',
                'Stop', () => post('stop', '', 'Stopping ' + p.name)), 'stop secondary') : null));
    const card = h('div.card.plan', { dataset: { plan: p.name, status: p.status } }, head);
    if (p.failed) card.appendChild(h('p.error-text', null, p.failed));
    if (params.length) {
      card.appendChild(h('p.muted', null, 'Parameters: ' + params.map(([k, v]) => k + '=' + v).join(', ')));
    }
    for (const err of p.errors || []) card.appendChild(h('p.error-text', null, err));
    if (never && p.name !== 'deploy') return card;
    for (const ph of p.phases || []) {
      const phPaused = (p.interrupted_phases || []).includes(ph.name);
      card.appendChild(h('div.phase', { dataset: { phase: ph.name, status: ph.status } },
        h('div.card-head', null,
          h('strong', null, ph.name), badge(ph.status),
          h('span.muted', null, ph.strategy + (ph.pod ? ', pod ' + ph.pod : '') + (phPaused ? ', paused' : '')),
          h('div.actions', null,
            !phPaused && ph.status !== 'COMPLETE' && !never
              ? act('Pause phase', () => post('interrupt', 'phase=' + enc(ph.name), 'Pausing phase ' + ph.name), 'secondary') : null,
            phPaused ? act('Resume phase', () => post('continue', 'phase=' + enc(ph.name), 'Resuming phase ' + ph.name)) : null)),
        h('ul.steps', null, (ph.steps || []).map((st) => h('li', { dataset: { step: st.name, status: st.status } },
          badge(st.status), h('span.step-name', null, st.name),
          st.message ? h('span.muted', null, st.message) : null,
          h('span.actions', null,
            st.status !== 'COMPLETE' && !never
              ? act('Force complete', () => confirmThen('Force-complete ' + st.name + '?',
                  'The step is marked COMPLETE without running it.', 'Force complete',
                  () => post('forceComplete', 'phase=' + enc(ph.name) + '&step=' + enc(st.name),
                             'Force-completing ' + st.name)), 'force secondary small') : null,
            (st.status === 'COMPLETE' || st.status === 'ERROR') && !never
              ? act('Restart step', () => post('restart', 'phase=' + enc(ph.name) + '&step=' + enc(st.name),
                                               'Restarting step ' + st.name), 'restart-step secondary small') : null))))));
    }
    return card;
  }

  // Start a plan with parameters (NAME=VALUE lines): they become the
  // environment of its tasks.
  function startPlan(svc, p) {
    const text = h('textarea', { rows: 5, style: 'min-height:6rem', placeholder: 'NAME=VALUE, one a line',
                                 'aria-label': 'Parameters' });
    text.value = Object.entries(p.parameters || {}).filter(([, v]) => v !== '(hidden)')
      .map(([k, v]) => k + '=' + v).join('\n');
    openModal('Start plan ' + p.name, [
      h('p', null, p.run ? 'The plan starts again from its beginning.' : 'The plan starts.'),
      h('label.field', null, 'Parameters (become its tasks\' environment)', text),
    ], 'Start', async () => {
      const body = {};
      const lines = text.value.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
      for (const l of lines) {
        const i = l.indexOf('=');
        if (i <= 0) throw new Error('"' + l + '" is not NAME=VALUE.');
        body[l.slice(0, i).trim()] = l.slice(i + 1);
      }
      const r = await api('POST', '/v1/service/' + enc(svc) + '/plans/' + enc(p.name) + '/start',
                          lines.length ? body : undefined, [], 'Starting ' + p.name);
      showNotice((r.data && r.data.message) || 'Started ' + p.name + '.');
      scheduleRefresh(0);
    });
  }

  // ------------------------------------------------------------------
  // Pods

  function podRow(svc, p, info, byNode) {
    const node = p.node ? byNode[p.node] : null;
    const addr = node && (node.address || node.hostname);
    const state = [];
    if (!p.placed) state.push(badge('not placed', p.message || ''));
    if (p.paused) state.push(badge('paused'));
    if (p.replacing) state.push(badge('replacing'));
    if (p.placed && !p.node_reachable) state.push(badge('disconnected', 'its node does not answer'));
    if (p.message && p.placed) state.push(h('div.muted', null, p.message));
    if (!state.length) state.push(badge('placed'));
    const ports = info && info.ports ? Object.entries(info.ports) : [];
    const base = '/v1/service/' + enc(svc) + '/pod/' + enc(p.name);
    const post = (op, what) => doAction(() => api('POST', base + '/' + op, undefined, [], what),
                                        () => what + ': done.');
    return h('tr', { dataset: { pod: p.name } },
      td('Instance', h('strong', null, p.name), h('div.muted', null, p.pod)),
      td('Node', p.node ? (p.node + (addr ? ' (' + addr + ')' : '')) : '-'),
      td('State', state),
      td('Tasks', (p.tasks || []).map((t) => h('div.task', { dataset: { task: t.name, status: t.status } },
        badge(t.status), ' ', h('span.mono', null, t.name),
        t.ready ? h('span.muted', null, ' ready') : null,
        h('span.muted', null, ' · ' + t.restarts + (t.restarts === 1 ? ' restart' : ' restarts')),
        t.message ? h('div.muted', null, t.message) : null,
        ' ', h('button.secondary', { type: 'button', class: 'secondary logs',
                                     onclick: () => showLogs(svc, t) }, 'Logs')))),
      td('Endpoints', ports.length ? ports.map(([k, v]) => h('div.mono', null, k + ': ' + (addr || '?') + ':' + v)) : '-'),
      isAdmin() ? td('Actions', h('div.actions', null,
        act('Restart', () => confirmThen('Restart ' + p.name + '?', 'Its tasks restart on the same node with the same volumes.',
                                         'Restart', () => post('restart', 'Restarting ' + p.name)), 'restart secondary'),
        act('Replace', () => confirmThen('Replace ' + p.name + '?',
                                         'Its tasks stop, its volumes are DELETED and it is launched afresh, on any node.',
                                         'Replace', () => post('replace', 'Replacing ' + p.name), true), 'replace danger'),
        p.paused ? act('Resume', () => post('resume', 'Resuming ' + p.name), 'resume')
                 : act('Pause', () => confirmThen('Pause ' + p.name + '?',
                                                  'Its tasks stop and stay stopped until it is resumed.',
                                                  'Pause', () => post('pause', 'Pausing ' + p.name)), 'pause secondary')))
                : null);
  }

  // A task's log tail; with Follow, what it writes next streams in (read
  // with fetch, like the events) until the dialog closes.
  const LOG_KEEP = 200000;

  function showLogs(svc, t) {
    const pre = h('pre.log', null, 'Loading…');
    const which = h('select', { 'aria-label': 'Stream' }, h('option', { value: 'stdout' }, 'stdout'),
                    h('option', { value: 'stderr' }, 'stderr'));
    const follow = h('input.follow', { type: 'checkbox' });
    const path = () => '/v1/tasks/' + enc(t.id || t.name) + '/logs?tail=200&stream=' + which.value +
                       '&service=' + enc(svc);
    let ctl = null;
    const stop = () => { if (ctl) ctl.abort(); ctl = null; };
    const show = (text) => {
      pre.textContent = text.length > LOG_KEEP ? text.slice(-LOG_KEEP) : text;
      pre.scrollTop = pre.scrollHeight;
    };
    const stream = async () => {
      const mine = new AbortController();
      ctl = mine;
      let text = '';
      try {
        const r = await fetch(path() + '&follow=true', { headers: { Authorization: 'Bearer ' + S.token },
                                                         signal: mine.signal, cache: 'no-store' });
        if (!r.ok) {
          const body = await r.text();
          let d = null;
          try { d = JSON.parse(body); } catch (e) { d = null; }
          show(describe(r.status, d, 'Logs of ' + t.name));
          return;
        }
        show('');
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text = (text + dec.decode(value, { stream: true })).slice(-LOG_KEEP);
          show(text);
        }
        show(text + '\n(the log ended: the task exited)');
      } catch (e) {
        if (!mine.signal.aborted) show(text + '\n' + describe(0, null, 'Logs of ' + t.name));
      }
    };
    const load = async () => {
      stop();
      pre.textContent = 'Loading…';
      if (follow.checked) {
        stream();
        return;
      }
      try {
        const r = await api('GET', path(), undefined, [], 'Logs of ' + t.name);
        show(r.data || '(nothing written)');
      } catch (e) {
        show(e.message);
      }
    };
    which.addEventListener('change', load);
    follow.addEventListener('change', load);
    openModal('Logs of ' + t.name, [h('div', null, which, ' ',
      h('label', null, follow, ' Follow'), ' ',
      h('button.secondary', { type: 'button', class: 'secondary', onclick: load }, 'Reload')), pre],
      null, null, 'Close', stop);
    load();
  }

  // ------------------------------------------------------------------
  // Updating a service: edit its spec, see the diff, then apply.

  async function editSpec(svc, kept) {
    let src = kept;
    if (!src) {
      try {
        src = (await api('GET', '/v1/service/' + enc(svc) + '/configurations/target/source', undefined, [],
                         'Reading the spec of ' + svc)).data;
      } catch (e) {
        if (e.status !== 401) showError(e.message);
        return;
      }
    }
    const spec = h('textarea.spec', { spellcheck: 'false', 'aria-label': 'Spec' });
    spec.value = src.spec;
    const opts = h('textarea.options', { spellcheck: 'false', rows: 6, style: 'min-height:6rem',
                                          'aria-label': 'Options (JSON)' });
    opts.value = JSON.stringify(src.options || {}, null, 2);
    openModal('Update ' + svc + ' (configuration ' + src.id + ')', [
      h('label.field', null, 'Spec (a mustache template)', spec),
      h('label.field', null, 'Options (JSON object: name → value)', opts),
      h('p.muted', null, 'Next: the server shows what would change; nothing changes before you apply it.'),
    ], 'Show the diff', async () => {
      let options;
      try { options = JSON.parse(opts.value || '{}'); } catch (e) {
        throw new Error('The options are not JSON: ' + e.message);
      }
      if (!options || typeof options !== 'object' || Array.isArray(options)) {
        throw new Error('The options must be a JSON object of name → value.');
      }
      const body = { spec: spec.value, file: src.file || 'spec.yml', options, templates: src.templates || {} };
      const d = await api('POST', '/v1/services/' + enc(svc) + '/diff', body, [], 'Diffing ' + svc);
      const edited = { id: src.id, file: src.file, spec: spec.value, options, templates: src.templates };
      setTimeout(() => showDiff(svc, body, d.data, edited), 0);
    });
  }

  function diffView(d) {
    const lines = [];
    for (const c of d.changes || []) lines.push(c);
    for (const p of d.pods || []) {
      if (p.change === 'unchanged') continue;
      lines.push('pod ' + p.pod + ': ' + p.change + ' (count ' + p['old-count'] + ' → ' + p['new-count'] + ')');
      for (const c of p.changes || []) lines.push('  ' + c);
      if ((p.relaunch || []).length) lines.push('  relaunches ' + p.relaunch.join(', '));
      if ((p.added || []).length) lines.push('  adds ' + p.added.join(', '));
      if ((p.removed || []).length) lines.push('  removes ' + p.removed.join(', '));
    }
    return h('div', null,
      d.allowed === false ? h('div.error-text', null, 'The server would refuse this change:\n' +
                              (d.refusals || []).map((r) => '  - ' + r).join('\n')) : null,
      lines.length ? h('pre.diff', null, lines.join('\n')) : h('p.muted', null, 'No effective change.'));
  }

  function showDiff(svc, body, d, edited) {
    openModal('Changes to ' + svc, [diffView(d)], d.allowed === false ? null : 'Apply the update', async () => {
      const r = await api('PUT', '/v1/services/' + enc(svc), body, [], 'Updating ' + svc);
      showNotice(changeSummary('Updated ' + svc, r.data));
      scheduleRefresh(0);
    }, 'Back to the spec', () => setTimeout(() => editSpec(svc, edited), 0));
  }

  async function rollback(svc) {
    let ids;
    let target;
    try {
      [ids, target] = await Promise.all([
        api('GET', '/v1/service/' + enc(svc) + '/configurations', undefined, [], 'Configurations of ' + svc),
        api('GET', '/v1/service/' + enc(svc) + '/configurations/targetId', undefined, [], 'Target of ' + svc),
      ]);
    } catch (e) {
      if (e.status !== 401) showError(e.message);
      return;
    }
    const others = ids.data.filter((i) => i !== target.data);
    if (!others.length) {
      showError('Roll back ' + svc + ': it has no other configuration than ' + target.data + '.');
      return;
    }
    const sel = h('select', { 'aria-label': 'Configuration' },
      h('option', { value: '' }, 'the previous target'),
      others.slice().reverse().map((i) => h('option', { value: i }, 'configuration ' + i)));
    openModal('Roll back ' + svc, [
      h('p', null, 'The configuration chosen becomes the target again (now ' + target.data +
                   '); only instances whose spec changes relaunch.'),
      h('label.field', null, 'Return to', sel),
    ], 'Roll back', async () => {
      const r = await api('POST', '/v1/services/' + enc(svc) + '/rollback' + (sel.value ? '?to=' + enc(sel.value) : ''),
                          undefined, [], 'Rolling back ' + svc);
      showNotice(changeSummary('Rolled back ' + svc, r.data));
      scheduleRefresh(0);
    });
  }

  // ------------------------------------------------------------------
  // Nodes: resources, and their use by the instances placed on them (the
  // resource sets of their pod types in each service's target).

  async function loadNodes() {
    const [nodes, svcs] = await Promise.all([
      api('GET', '/v1/nodes', undefined, [], 'Listing nodes'),
      api('GET', '/v1/services', undefined, [], 'Listing services'),
    ]);
    const use = {};
    await Promise.all(svcs.data.map(async (s) => {
      const base = '/v1/service/' + enc(s.name);
      let cfg;
      let pods;
      try {
        [cfg, pods] = await Promise.all([
          api('GET', base + '/configurations/target', undefined, [], 'Target of ' + s.name),
          api('GET', base + '/pod/status', undefined, [], 'Pods of ' + s.name)]);
      } catch (e) {
        return;
      }
      const per = {};
      for (const pt of cfg.data.pods || []) {
        let cpus = 0;
        let mem = 0;
        for (const rs of pt['resource-sets'] || []) { cpus += rs.cpus || 0; mem += rs.memory || 0; }
        per[pt.name] = { cpus, mem };
      }
      for (const p of pods.data.pods) {
        if (!p.node || !per[p.pod]) continue;
        const u = use[p.node] || (use[p.node] = { cpus: 0, mem: 0, instances: [] });
        u.cpus += per[p.pod].cpus;
        u.mem += per[p.pod].mem;
        u.instances.push(s.name + '/' + p.name);
      }
    }));
    const rows = nodes.data.map((n) => {
      const u = use[n.id] || { cpus: 0, mem: 0, instances: [] };
      const r = n.resources || {};
      const st = n.storage;
      return h('tr', { dataset: { node: n.id } },
        td('Node', h('strong', null, n.id), h('div.muted', null, [n.hostname, n.address].filter(Boolean).join(' · '))),
        td('State', badge(n.decommissioned ? 'decommissioned' : n.connected ? 'connected' : 'disconnected'),
           n.refused ? h('div.error-text', null, n.refused) : null,
           h('div.muted', null, 'seen ' + ago(n.last_seen))),
        td('CPUs', bar(u.cpus, r.cpus, u.cpus.toFixed(2) + ' of ' + r.cpus + ' reserved')),
        td('Memory', bar(u.mem, r.memory_mb, Math.round(u.mem) + ' of ' + Math.round(r.memory_mb) + ' MB reserved')),
        td('Storage', st ? bar(st.used, st.capacity, bytes(st.used) + ' used, ' + bytes(st.provisioned) +
                                ' given, of ' + bytes(st.capacity)) : h('span.muted', null, 'no pool')),
        td('Ports', r.port_begin + '–' + r.port_end),
        td('Instances', u.instances.length ? h('div.mono', null, u.instances.join(', ')) : '-'));
    });
    return h('section.card', { id: 'nodes' },
      h('div.card-head', null, h('h1', null, 'Nodes'), h('span.muted', null, nodes.data.length + ' registered')),
      rows.length ? table(['Node', 'State', 'CPUs', 'Memory', 'Storage', 'Ports', 'Instances'], rows, 'nodes')
                  : h('p.muted', null, 'No agent has registered a node.'));
  }

  // ------------------------------------------------------------------
  // Volumes: local volume directories, and replicated volumes with their
  // replicas and resync progress.

  /*
   * How far a replica's copy is, as the API knows it: a replica being
   * made (a clone's, from a backup) has "made"; a resync the server
   * tracks has resync_done of resync_total; otherwise, while the volume is
   * attached, its attach process's counters of the copies under way
   * (io.resync_sent of io.resync_planned) are the best measure.
   */
  function replicaProgress(v, r) {
    if (r.made && r.made.total > 0) {
      return bar(r.made.done, r.made.total, 'made ' + bytes(r.made.done) + ' of ' + bytes(r.made.total));
    }
    if (r.state === 'in_sync') return null;
    if (r.resync_total > 0) {
      const pct = r.percent !== null && r.percent !== undefined ? r.percent + '%: ' : '';
      return bar(r.resync_done, r.resync_total, 'resync ' + pct + bytes(r.resync_done) + ' of ' + bytes(r.resync_total));
    }
    if (r.state === 'resyncing' && v.io && v.io.resync_planned > 0) {
      return bar(v.io.resync_sent, v.io.resync_planned,
                 'resync ' + bytes(v.io.resync_sent) + ' of ' + bytes(v.io.resync_planned));
    }
    return null;
  }

  function replicaLine(v, r) {
    return h('div.replica', { dataset: { replica: r.node, state: r.state } },
      h('span.mono', null, r.node + ' '), badge(r.state),
      v.attached && r.node === v.attached ? h('span.muted', null, ' attached here') : null,
      r.since ? h('span.muted', null, ' since ' + ago(r.since)) : null,
      replicaProgress(v, r),
      r.missed ? h('div.muted.missed', null, r.state === 'resyncing'
        ? 'sending the ' + bytes(r.missed) + ' written without it'
        : bytes(r.missed) + ' written without it, to resend') : null,
      r.why && r.state !== 'in_sync' ? h('div.muted.why', null, r.why) : null);
  }

  async function loadVolumes() {
    const view = S.view;
    const [vols, xvols] = await Promise.all([
      api('GET', '/v1/volumes', undefined, [], 'Listing volumes'),
      api('GET', '/v1/external-volumes', undefined, [], 'Listing external volumes'),
    ]);
    const local = vols.data.filter((v) => v.type !== 'EXTERNAL');
    const xrows = xvols.data.map((v) => h('tr', { dataset: { volume: v.name, state: v.state,
                                                            inSync: String(v.in_sync), attached: v.attached || '' } },
      td('Volume', h('strong', null, v.name), h('div.muted', null, v.service + (v.instance ? '/' + v.instance : ''))),
      td('State', badge(v.state), v.degraded ? [' ', badge('degraded')] : null),
      td('Size', h('span.size', null, bytes(v.size)), v.ro ? h('div.muted', null, 'read-only') : null),
      td('Replicas', h('div.in-sync', null, (v.in_sync !== undefined ? v.in_sync + ' of ' + v.repl + ' in sync' : v.repl + ' wanted') +
                                    ', at least ' + v.min_sync)),
      td('Attached', h('span.attached', null, v.attached ? v.attached + ' (epoch ' + v.epoch + ')' : 'not attached')),
      td('Each replica', (v.replicas || []).map((r) => replicaLine(v, r))),
      td('I/O', v.io ? h('span.muted.io', null, bytes(v.io.written) + ' written, ' + bytes(v.io.replicated) + ' replicated' +
                                            (v.io.resync_planned ? ', resync ' + bytes(v.io.resync_sent) + ' of ' +
                                             bytes(v.io.resync_planned) + ' sent' : '') + (v.io.note ? ' — ' + v.io.note : ''))
                     : '-')));
    // The stream says little about a copy under way: while one is, or an
    // attached volume misses a replica (which may come back any time),
    // look again every two seconds (one timer, however many loads events
    // caused). A detached volume's down replica stays down: no need.
    clearTimeout(S.volumesTimer);
    const moving = (v) => (v.attached && v.degraded) ||
      (v.replicas || []).some((r) => r.state === 'resyncing' || r.state === 'new' || r.made);
    if (xvols.data.some(moving)) {
      S.volumesTimer = setTimeout(() => { if (S.view === view) scheduleRefresh(0); }, 2000);
    }
    const lrows = local.map((v) => h('tr', null,
      td('Volume', h('span.mono', null, v.key)),
      td('Node', v.node),
      td('State', badge(v.status.replace(/ /g, '_'), v.why || ''), v.why ? h('div.muted', null, v.why) : null),
      td('Since', v.since ? ago(v.since) : '-')));
    return h('div', null,
      h('section.card', { id: 'external-volumes' },
        h('h1', null, 'Replicated volumes'),
        xrows.length ? table(['Volume', 'State', 'Size', 'Replicas', 'Attached', 'Each replica', 'I/O'], xrows, 'xvols')
                     : h('p.muted', null, 'No replicated volume.')),
      h('section.card', { id: 'volumes' },
        h('h2', null, 'Volume directories'),
        lrows.length ? table(['Volume', 'Node', 'State', 'Since'], lrows, 'vols')
                     : h('p.muted', null, 'No volume directory.')));
  }

  // ------------------------------------------------------------------
  // Events

  function eventLine(e) {
    return h('li', { dataset: { id: String(e.id), kind: e.kind } },
      (e.time || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z') + '  ' +
      (e.service ? e.service + '  ' : '') + e.kind + ' ' + (e.object || '') + '  ' +
      (e.before || '') + (e.before || e.after ? ' → ' : '') + (e.after || '') +
      (e.why ? '  (' + e.why + ')' : '') + (e.who ? '  by ' + e.who : ''));
  }

  async function loadEvents() {
    const list = S.events.slice(-300).reverse();
    return h('section.card', { id: 'events' },
      h('div.card-head', null, h('h1', null, 'Events'),
        h('span.muted', null, S.streamUp ? 'live from the server' : 'the stream is reconnecting')),
      list.length ? h('ul.events', null, list.map(eventLine)) : h('p.muted', null, 'No event yet.'));
  }

  // ------------------------------------------------------------------
  // Modal dialogs (no window.confirm: it blocks the page)

  let modalCancel = null;

  function openModal(title, body, okLabel, onOk, cancelLabel, onCancel) {
    const m = $('modal');
    $('modal-title').textContent = title;
    $('modal-body').replaceChildren(...body);
    $('modal-error').textContent = '';
    const ok = $('modal-ok');
    const cancel = $('modal-cancel');
    ok.hidden = !okLabel;
    ok.textContent = okLabel || 'OK';
    ok.disabled = false;
    ok.classList.remove('danger');
    cancel.textContent = cancelLabel || (okLabel ? 'Cancel' : 'Close');
    modalCancel = onCancel || null;
    ok.onclick = async () => {
      ok.disabled = true;
      $('modal-error').textContent = '';
      try {
        await onOk();
        closeModal(true);
      } catch (e) {
        if (e.status !== 401) $('modal-error').textContent = e.message;
      } finally {
        ok.disabled = false;
      }
    };
    m.hidden = false;
    const first = $('modal-body').querySelector('textarea, input, select');
    (first || (okLabel ? ok : cancel)).focus();
  }

  function closeModal(done) {
    const m = $('modal');
    if (m.hidden) return;
    m.hidden = true;
    $('modal-body').replaceChildren();
    const after = modalCancel;
    modalCancel = null;
    if (!done && after) after();
  }

  function confirmThen(title, text, okLabel, fn, danger) {
    openModal(title, [h('p', null, text)], okLabel, async () => { setTimeout(fn, 0); });
    $('modal-ok').classList.toggle('danger', !!danger);
  }

  // ------------------------------------------------------------------
  // Start

  function init() {
    // "/ui/?token=…" signs in: keep the token, drop it from the address
    // bar and the history at once, before anything else runs.
    const params = new URLSearchParams(location.search);
    const given = params.get('token');
    if (params.has('token')) {
      params.delete('token');
      const q = params.toString();
      history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
      if (given) keepToken(given, false);
    }
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (!t) return;
      keepToken(t, $('remember').checked);
      $('token-input').value = '';
      signIn(t);
    });
    $('signout').addEventListener('click', () => signOut('Signed out.'));
    $('modal-cancel').addEventListener('click', () => closeModal(false));
    $('modal').addEventListener('click', (e) => { if (e.target === $('modal')) closeModal(false); });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeModal(false); });
    $('error').addEventListener('click', clearError);
    window.addEventListener('hashchange', route);
    const t = storedToken();
    if (t) signIn(t);
    else showSignin('');
  }

  init();
}());
