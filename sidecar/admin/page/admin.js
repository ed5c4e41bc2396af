// The admin page: polls /status every second and renders it; charts the last
// ten minutes from /history plus each poll; drains and enables servers after an
// in-page confirmation. Plain script, no library: the CSP allows only this file.
'use strict';

(function () {
  const REFRESH_MS = 1000;
  const REQUEST_TIMEOUT_MS = 5000;
  const HISTORY_POINTS = 600;
  const WINDOW_MS = 600 * 1000;
  const COLOURS = 10;  // .c0 .. .c9 in admin.css
  const FIELDS = ['role', 'state', 'rtt', 'incarnation', 'warmup', 'sessions'];
  const FIELD_TITLES = {
    role: 'role', state: 'state', rtt: 'RTT', incarnation: 'incarnation',
    warmup: 'warm-up', sessions: 'sessions',
  };
  const SVG = 'http://www.w3.org/2000/svg';

  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.getAttribute('content') : '';

  // Per server id: {sessions: [{t, v}], rtt_ms: [{t, v}]}, oldest first.
  const series = new Map();
  let columnsKey = null;      // the table's columns as last built
  let refreshError = '';
  let actionError = '';
  let timer = null;
  let pendingAction = null;   // {server, action} while the dialog is open

  // ------------------------------------------------------------ helpers

  function isNumber(v) { return typeof v === 'number' && isFinite(v); }
  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
  function asArray(v) { return Array.isArray(v) ? v : []; }
  function text(v) { return v === null || v === undefined || v === '' ? '-' : String(v); }

  function formatDuration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 120) return s + ' s';
    const min = Math.floor(s / 60);
    if (min < 120) return min + ' min';
    const h = Math.floor(min / 60);
    if (h < 48) return h + ' h ' + (min % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function shortCommit(commit) {
    return typeof commit === 'string' && commit !== '' ? commit.slice(0, 7) : '-';
  }

  function stateClass(state) {
    return 'state-' + String(state).toLowerCase().replace(/[^a-z0-9-]/g, '-');
  }

  function showError() {
    const box = document.getElementById('error');
    const message = [refreshError, actionError].filter(Boolean).join(' · ');
    box.textContent = message;
    box.hidden = message === '';
  }

  async function fetchJson(url, options) {
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    try {
      const response = await fetch(url, Object.assign(
          {cache: 'no-store', credentials: 'same-origin', signal: controller.signal}, options || {}));
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      if (!response.ok) {
        const why = isObject(body) && typeof body.error === 'string' ? body.error
                                                                      : 'HTTP ' + response.status;
        throw new Error(why);
      }
      return body;
    } catch (e) {
      if (e.name === 'AbortError') throw new Error('no answer within ' + REQUEST_TIMEOUT_MS / 1000 + ' s');
      throw e;
    } finally {
      clearTimeout(timeout);
    }
  }

  // ------------------------------------------------------------ table

  function buildColumns(webapps) {
    const table = document.getElementById('servers');
    const head = table.tHead.rows[0];
    head.textContent = '';
    const th = (label) => { const cell = document.createElement('th'); cell.textContent = label; head.appendChild(cell); };
    th('server');
    FIELDS.forEach((f) => th(FIELD_TITLES[f]));
    webapps.forEach((w) => th(w));
    th('');
    table.tBodies[0].textContent = '';  // rows are rebuilt with the new columns
  }

  function makeRow(id, webapps) {
    const row = document.createElement('tr');
    row.dataset.server = id;
    const name = document.createElement('th');
    name.scope = 'row';
    name.dataset.field = 'server';
    row.appendChild(name);
    FIELDS.forEach((f) => {
      const cell = document.createElement('td');
      cell.dataset.field = f;
      row.appendChild(cell);
    });
    webapps.forEach((w) => {
      const cell = document.createElement('td');
      cell.dataset.webapp = w;
      row.appendChild(cell);
    });
    const actions = document.createElement('td');
    actions.className = 'actions';
    ['drain', 'enable'].forEach((action) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.action = action;
      button.dataset.server = id;
      button.textContent = action;
      actions.appendChild(button);
    });
    row.appendChild(actions);
    return row;
  }

  function setCell(row, selector, value, className, title) {
    const cell = row.querySelector(selector);
    if (!cell) return;
    if (cell.textContent !== value) cell.textContent = value;
    cell.className = className || '';
    if (title) cell.title = title; else cell.removeAttribute('title');
  }

  function versionCell(server, deployment) {
    const deployed = isObject(server.deployed) ? server.deployed[deployment.name] : undefined;
    const commit = isObject(deployed) && typeof deployed.commit === 'string' ? deployed.commit : '';
    const error = isObject(deployed) && typeof deployed.error === 'string' ? deployed.error : '';
    const current = typeof deployment.commit === 'string' ? deployment.commit : '';
    if (current !== '' && commit === current && error === '') {
      const label = typeof deployment.version === 'string' && deployment.version !== ''
          ? deployment.version : shortCommit(current);
      return {text: label, className: 'version-ok', title: current};
    }
    let why;
    if (error !== '') why = 'error: ' + error;
    else if (commit === '') why = 'not deployed yet';
    else why = 'has ' + shortCommit(commit) + ', current is ' + shortCommit(current);
    return {text: '✗ ' + (commit === '' ? 'none' : shortCommit(commit)), className: 'version-bad', title: why};
  }

  function renderTable(status) {
    const deployments = asArray(status.deployments).filter((d) => isObject(d) && typeof d.name === 'string');
    const webapps = deployments.map((d) => d.name);
    const key = JSON.stringify(webapps);
    if (key !== columnsKey) {
      buildColumns(webapps);
      columnsKey = key;
    }
    const self = isObject(status.server) ? status.server.id : undefined;
    const now = isNumber(status.now_unix_ms) ? status.now_unix_ms : null;
    const body = document.getElementById('servers').tBodies[0];
    const existing = new Map();
    Array.from(body.rows).forEach((row) => existing.set(row.dataset.server, row));
    const seen = new Set();
    let previous = null;
    asArray(status.servers).forEach((server) => {
      if (!isObject(server) || typeof server.id !== 'string' || seen.has(server.id)) return;
      const id = server.id;
      seen.add(id);
      let row = existing.get(id);
      if (!row) row = makeRow(id, webapps);
      // Keep the status's order without recreating rows (a click in flight stays valid).
      const wanted = previous ? previous.nextSibling : body.firstChild;
      if (wanted !== row) body.insertBefore(row, wanted);
      previous = row;

      row.classList.toggle('self', id === self);
      const name = row.querySelector('th[data-field="server"]');
      const route = typeof server.route === 'string' && server.route !== '' ? ' (' + server.route + ')' : '';
      const label = id + route + (id === self ? ' ★' : '');
      if (name.textContent !== label) name.textContent = label;
      name.title = [server.http_address, server.cluster_address].filter((a) => typeof a === 'string').join(' · ');

      const role = server.dynamic === true ? 'dynamic' : text(server.role);
      setCell(row, 'td[data-field="role"]', role, '', server.dynamic === true ? text(server.role) : '');

      const state = typeof server.state === 'string' ? server.state : null;
      let stateText = text(state);
      if (state !== null && now !== null && isNumber(server.state_since_unix_ms)) {
        stateText += ' ' + formatDuration(now - server.state_since_unix_ms);
      }
      setCell(row, 'td[data-field="state"]', stateText, state !== null ? stateClass(state) : '',
              server.connected === false && id !== self ? 'not connected' : '');

      // Only what would change something: drain an up (or down) server, enable a drained one.
      row.querySelectorAll('button[data-action]').forEach((button) => {
        button.disabled = (button.dataset.action === 'drain' && state === 'draining') ||
                          (button.dataset.action === 'enable' && state === 'up');
      });

      setCell(row, 'td[data-field="rtt"]', isNumber(server.rtt_ms) ? server.rtt_ms.toFixed(2) + ' ms' : '-');
      setCell(row, 'td[data-field="incarnation"]', text(server.incarnation));
      setCell(row, 'td[data-field="warmup"]',
              isNumber(server.warmup) ? Math.round(Math.min(1, Math.max(0, server.warmup)) * 100) + '%' : '-');
      setCell(row, 'td[data-field="sessions"]', isNumber(server.sessions) ? String(Math.round(server.sessions)) : '-');

      deployments.forEach((d) => {
        const v = versionCell(server, d);
        setCell(row, 'td[data-webapp="' + CSS.escape(d.name) + '"]', v.text, v.className, v.title);
      });
    });
    existing.forEach((row, id) => { if (!seen.has(id)) row.remove(); });
  }

  function renderHeader(status) {
    const self = isObject(status.server) && typeof status.server.id === 'string' ? status.server.id : '';
    const cluster = typeof status.cluster === 'string' ? status.cluster : '';
    const title = 'cluster-sidecar' + (self ? ' ' + self : '');
    document.getElementById('title').textContent = title;
    document.title = title + (cluster ? ' · ' + cluster : '');
    document.getElementById('cluster').textContent = text(cluster);
    document.getElementById('generation').textContent = text(status.generation);
  }

  // ------------------------------------------------------------ charts

  function seriesOf(id) {
    let s = series.get(id);
    if (!s) {
      s = {sessions: [], rtt_ms: []};
      series.set(id, s);
    }
    return s;
  }

  function push(points, t, v) {
    if (points.length > 0 && points[points.length - 1].t >= t) return;  // same sample twice
    points.push({t: t, v: isNumber(v) ? v : null});
    if (points.length > HISTORY_POINTS) points.splice(0, points.length - HISTORY_POINTS);
  }

  function loadHistory(history) {
    if (!isObject(history) || !isObject(history.servers) || !isNumber(history.end_unix_ms)) return;
    const interval = isNumber(history.interval_ms) && history.interval_ms > 0 ? history.interval_ms : 1000;
    Object.keys(history.servers).forEach((id) => {
      const h = history.servers[id];
      if (!isObject(h)) return;
      const s = seriesOf(id);
      ['sessions', 'rtt_ms'].forEach((metric) => {
        const values = asArray(h[metric]).slice(-HISTORY_POINTS);
        const loaded = values.map((v, i) => ({
          t: history.end_unix_ms - (values.length - 1 - i) * interval,
          v: isNumber(v) ? v : null,
        }));
        // Polls that arrived before the history answered come after it.
        const last = loaded.length > 0 ? loaded[loaded.length - 1].t : -Infinity;
        s[metric] = loaded.concat(s[metric].filter((p) => p.t > last)).slice(-HISTORY_POINTS);
      });
    });
  }

  function appendSamples(status) {
    const t = isNumber(status.now_unix_ms) ? status.now_unix_ms : Date.now();
    asArray(status.servers).forEach((server) => {
      if (!isObject(server) || typeof server.id !== 'string') return;
      const s = seriesOf(server.id);
      push(s.sessions, t, server.sessions);
      push(s.rtt_ms, t, server.rtt_ms);
    });
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * magnitude) return step * magnitude;
    }
    return 10 * magnitude;
  }

  function svgElement(name, attributes) {
    const e = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach((k) => e.setAttribute(k, attributes[k]));
    return e;
  }

  function drawChart(svgId, maxId, metric, ids, end, unit) {
    const svg = document.getElementById(svgId);
    const W = 600, H = 150, left = 40, right = 4, top = 8, bottom = 16;
    const start = end - WINDOW_MS;
    let max = 0;
    ids.forEach((id) => seriesOf(id)[metric].forEach((p) => {
      if (p.t >= start && p.v !== null && p.v > max) max = p.v;
    }));
    const top_value = niceMax(max);
    const x = (t) => left + (t - start) / WINDOW_MS * (W - left - right);
    const y = (v) => top + (1 - v / top_value) * (H - top - bottom);
    svg.textContent = '';
    [0, 0.5, 1].forEach((f) => {
      const value = top_value * f;
      svg.appendChild(svgElement('line', {class: 'grid', x1: left, x2: W - right, y1: y(value), y2: y(value)}));
      const label = svgElement('text', {class: 'axis-label', x: left - 4, y: y(value) + 4, 'text-anchor': 'end'});
      label.textContent = (Number.isInteger(value) ? String(value) : value.toFixed(1));
      svg.appendChild(label);
    });
    const minutes = svgElement('text', {class: 'axis-label', x: left, y: H - 3});
    minutes.textContent = '-10 min';
    svg.appendChild(minutes);
    const nowLabel = svgElement('text', {class: 'axis-label', x: W - right, y: H - 3, 'text-anchor': 'end'});
    nowLabel.textContent = 'now';
    svg.appendChild(nowLabel);
    ids.forEach((id, index) => {
      // A gap (null) splits the line.
      let run = [];
      const flush = () => {
        if (run.length > 0) {
          const line = svgElement('polyline', {class: 'c' + (index % COLOURS), points: run.join(' ')});
          const title = svgElement('title', {});
          title.textContent = id;
          line.appendChild(title);
          svg.appendChild(line);
        }
        run = [];
      };
      seriesOf(id)[metric].forEach((p) => {
        if (p.t < start || p.v === null) { flush(); return; }
        run.push(x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1));
      });
      // A single point still shows as a dot-sized line.
      if (run.length === 1) run.push(run[0]);
      flush();
    });
    document.getElementById(maxId).textContent = max > 0 ? '(max ' + (unit === 'ms' ? max.toFixed(2) + ' ms' : max) + ')' : '';
  }

  function renderCharts(status) {
    const ids = asArray(status.servers).filter((s) => isObject(s) && typeof s.id === 'string').map((s) => s.id);
    const end = isNumber(status.now_unix_ms) ? status.now_unix_ms : Date.now();
    drawChart('chart-sessions', 'max-sessions', 'sessions', ids, end, '');
    drawChart('chart-rtt', 'max-rtt', 'rtt_ms', ids, end, 'ms');
    const legend = document.getElementById('legend');
    const key = JSON.stringify(ids);
    if (legend.dataset.key === key) return;
    legend.dataset.key = key;
    legend.textContent = '';
    ids.forEach((id, index) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = 'swatch c' + (index % COLOURS);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(id));
      legend.appendChild(item);
    });
  }

  // ------------------------------------------------------------ refresh

  function render(status) {
    if (!isObject(status)) throw new Error('/status is not a JSON object');
    renderHeader(status);
    renderTable(status);
    appendSamples(status);
    renderCharts(status);
    document.getElementById('updated').textContent = new Date().toLocaleTimeString();
    document.body.dataset.ready = '1';
    // How many refreshes have been drawn: lets a watcher wait for a fresh one.
    document.body.dataset.renders = String((Number(document.body.dataset.renders) || 0) + 1);
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      render(await fetchJson('/status'));
      refreshError = '';
    } catch (e) {
      refreshError = 'refresh failed: ' + e.message;
    }
    showError();
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function loadHistoryOnce() {
    try {
      loadHistory(await fetchJson('/history'));
    } catch (e) {
      // An older sidecar has no /history: the charts start empty.
    }
  }

  // ------------------------------------------------------------ drain / enable

  function openDialog(server, action) {
    pendingAction = {server: server, action: action};
    document.getElementById('confirm-text').textContent =
        action === 'drain' ? 'Drain ' + server + '? It gets no new sessions; existing ones stay until they end.'
                           : 'Enable ' + server + '? It takes new sessions again.';
    const dialog = document.getElementById('confirm');
    if (typeof dialog.showModal === 'function') dialog.showModal(); else dialog.setAttribute('open', '');
    document.getElementById('confirm-no').focus();
  }

  function closeDialog() {
    const dialog = document.getElementById('confirm');
    if (typeof dialog.close === 'function' && dialog.open) dialog.close(); else dialog.removeAttribute('open');
    pendingAction = null;
  }

  async function perform(server, action) {
    try {
      await fetchJson('/servers/' + encodeURIComponent(server) + '/' + action,
                      {method: 'POST', headers: {'X-CSRF-Token': csrfToken}});
      actionError = '';
    } catch (e) {
      actionError = action + ' ' + server + ' failed: ' + e.message;
    }
    showError();
    refresh();
  }

  function start() {
    document.getElementById('servers').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button) return;
      openDialog(button.dataset.server, button.dataset.action);
    });
    document.getElementById('confirm-yes').addEventListener('click', () => {
      const chosen = pendingAction;
      closeDialog();
      if (chosen) perform(chosen.server, chosen.action);
    });
    document.getElementById('confirm-no').addEventListener('click', closeDialog);
    document.getElementById('confirm').addEventListener('cancel', () => { pendingAction = null; });
    // The first /status is shown as soon as it comes; history fills the charts
    // when it arrives (a slow /history must not delay the table).
    loadHistoryOnce();
    refresh();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
