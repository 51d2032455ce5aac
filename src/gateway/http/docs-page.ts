// A small, self-contained HTML page (no CDN, no external assets) that renders /openapi.json.

/**
 * Escapes a description for HTML and turns its markdown code spans (`like this`) into <code>. The page runs this
 * function itself (its source is inlined below), so the descriptions show code, not backticks; the test calls it too.
 */
export function renderInline(text: string): string {
  const escaped = String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
  return escaped.replace(/`([^`]+)`/g, '<code>$1</code>');
}

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>physical-ai-gateway API</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 1.5rem; color: #1d1d1f; }
  h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
  details { border: 1px solid #ddd; border-radius: 6px; margin: .5rem 0; padding: .3rem .8rem; }
  summary { cursor: pointer; }
  .m { display: inline-block; min-width: 3.5rem; font-weight: 600; font-family: ui-monospace, monospace; }
  .get { color: #0a6; } .post { color: #06c; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
  pre { background: #f6f6f6; padding: .6rem; overflow: auto; border-radius: 4px; }
  .lock { color: #b60; font-size: 12px; margin-left: .5rem; }
</style>
</head>
<body>
<h1 id="title">API</h1>
<p id="desc"></p>
<div id="paths"></div>
<h2>Schemas</h2>
<div id="schemas"></div>
<script>
(async () => {
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const md = ${renderInline.toString()};
  const res = await fetch('openapi.json');
  const doc = await res.json();
  document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
  document.getElementById('desc').innerHTML = md(doc.info.description || '');
  const paths = document.getElementById('paths');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const d = document.createElement('details');
      const lock = op.security && op.security.length ? '<span class="lock">bearer token</span>' : '';
      let html = '<summary><span class="m ' + method + '">' + method.toUpperCase() + '</span> <code>' + esc(path) + '</code> ' + md(op.summary || '') + lock + '</summary>';
      if (op.requestBody) html += '<h4>Request body</h4>' + (op.requestBody.description ? '<p>' + md(op.requestBody.description) + '</p>' : '') + '<pre>' + esc(JSON.stringify(op.requestBody.content, null, 2)) + '</pre>';
      html += '<h4>Responses</h4><ul>';
      for (const [status, r] of Object.entries(op.responses || {})) html += '<li><b>' + esc(status) + '</b> ' + md(r.description || '') + '</li>';
      html += '</ul>';
      d.innerHTML = html;
      paths.appendChild(d);
    }
  }
  const schemas = document.getElementById('schemas');
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    const d = document.createElement('details');
    d.id = 'schema-' + name;
    d.innerHTML = '<summary><code>' + esc(name) + '</code> ' + md(schema.description || schema.title || '') + '</summary><pre>' + esc(JSON.stringify(schema, null, 2)) + '</pre>';
    schemas.appendChild(d);
  }
})().catch((err) => { document.body.insertAdjacentHTML('beforeend', '<p>Cannot load openapi.json: ' + String(err) + '</p>'); });
</script>
</body>
</html>
`;
