// Kevlar's dashboard: the live feed. A table with data-live gets every new event the server
// sends (server-sent events) at its top; rows are built with textContent only.
'use strict';
(function () {
  const table = document.querySelector('table[data-live]');
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const state = document.getElementById('live-state');
  const cell = (text, href, cls) => {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    if (href && text) {
      const a = document.createElement('a');
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text || '';
    }
    return td;
  };
  const feed = new EventSource(table.dataset.live);
  feed.onmessage = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (_) { return; }
    if (body.querySelector('tr[data-id="' + Number(e.id) + '"]')) return;
    const tr = document.createElement('tr');
    tr.dataset.id = String(e.id);
    tr.className = 'fresh';
    tr.appendChild(cell(e.time, '/events/' + encodeURIComponent(e.id)));
    tr.appendChild(cell(e.level, null, 'lv-' + e.level));
    tr.appendChild(cell(e.action));
    tr.appendChild(cell(e.ip, '/blackbook/' + encodeURIComponent(e.ip)));
    tr.appendChild(cell(e.user, '/logins/' + encodeURIComponent(e.user)));
    tr.appendChild(cell(e.path, null, 'path'));
    tr.appendChild(cell(e.message));
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
    const empty = document.querySelector('p.empty');
    if (empty) empty.remove();
  };
  feed.onopen = () => { if (state) state.textContent = 'Live: new events appear at the top.'; };
  feed.onerror = () => { if (state) state.textContent = 'Live feed interrupted; retrying.'; };
})();
