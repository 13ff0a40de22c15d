// What the storefront and the dashboard share: API calls, building DOM, formatting.
// Text from the API or a customer only ever reaches the page as text nodes.

export class ApiError extends Error {
  constructor(status, body) {
    const lines = detailLines(body);
    super(lines.join('\n'));
    this.status = status;
    this.body = body;
    this.lines = lines;
  }
}

// The API's `detail`: a string, or the 422 list shown as "field: msg" lines.
function detailLines(body) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return [detail];
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const loc = Array.isArray(d.loc) ? d.loc.filter((p) => p !== 'body' && p !== 'query' && p !== 'path') : [];
      return loc.length ? `${loc.join('.')}: ${d.msg}` : String(d.msg);
    });
  }
  return ['Something went wrong. Please try again.'];
}

let refreshing = null;

async function refresh() {
  // One refresh at a time: concurrent 401s wait for the same one.
  refreshing ??= fetch('/api/account/refresh', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  }).then((r) => r.ok).finally(() => { refreshing = null; });
  return refreshing;
}

// Calls the API on this origin with the login cookies. A 401 refreshes the access token
// once and retries. Answers the parsed body (null for 204); throws ApiError.
export async function api(method, path, { json, form, headers = {}, retry = true } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, { detail: 'The shop cannot be reached. Check your connection and try again.' });
  }
  if (res.status === 401 && retry && !path.startsWith('/api/account/refresh') && !path.startsWith('/api/account/login')) {
    if (await refresh()) return api(method, path, { json, form, headers, retry: false });
  }
  if (res.status === 204) return null;
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export const get = (path) => api('GET', path);

// h('a', {href: '/x', class: 'btn'}, 'text', child): attributes are set as attributes,
// `on*` functions become listeners, strings become text nodes.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked' || key === 'disabled' || key === 'selected' || key === 'required' || key === 'multiple') el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let fieldSeq = 0;
// A labelled form field. `control` is 'input' (default), 'textarea' or 'select'.
export function field(label, attrs = {}, { control = 'input', options = [], hint } = {}) {
  const id = attrs.id || `f${++fieldSeq}`;
  let input;
  if (control === 'select') {
    input = h('select', { ...attrs, id }, options.map(([value, text, selected]) => h('option', { value, selected }, text)));
  } else {
    input = h(control, { ...attrs, id });
  }
  const hintEl = hint ? h('small', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

export function checkbox(label, attrs = {}) {
  const id = attrs.id || `f${++fieldSeq}`;
  return h('div', { class: 'check' }, h('input', { type: 'checkbox', ...attrs, id }), h('label', { for: id }, label));
}

// The message area of a form: shows an API error's lines, or a notice.
export function messageBox() {
  const box = h('div', { class: 'message', role: 'alert', 'aria-live': 'polite', hidden: true });
  box.error = (err) => {
    const lines = err instanceof ApiError ? err.lines : [String(err && err.message ? err.message : err)];
    clear(box, lines.length > 1 ? h('ul', {}, lines.map((l) => h('li', {}, l))) : lines[0]);
    box.className = 'message error';
    box.hidden = false;
  };
  box.ok = (text, ...more) => {
    clear(box, text, ...more);
    box.className = 'message ok';
    box.hidden = false;
  };
  box.reset = () => { box.hidden = true; box.replaceChildren(); };
  return box;
}

// Runs `work` for a submitted form: its submit button is disabled meanwhile, and a
// failure lands in `box`.
export function onSubmit(form, box, work) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll('button[type=submit], button:not([type])');
    if ([...buttons].some((b) => b.disabled)) return;
    buttons.forEach((b) => { b.disabled = true; });
    form.setAttribute('aria-busy', 'true');
    box.reset();
    try {
      await work(new FormData(form));
    } catch (err) {
      box.error(err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      form.removeAttribute('aria-busy');
    }
  });
  return form;
}

// A button that runs `work` once at a time; errors go to `box`.
export function action(label, work, box, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    box?.reset();
    try {
      await work();
    } catch (err) {
      if (box) box.error(err); else alert(err.message);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  return button;
}

let currency = 'USD';
export function setCurrency(code) { currency = code || 'USD'; }

export function money(amount) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(Number(amount));
  } catch {
    return `${Number(amount).toFixed(2)} ${currency}`;
  }
}

export function date(text, withTime = true) {
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return text;
  return withTime
    ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
    : d.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

export const label = (s) => String(s || '').replace(/_/g, ' ');

export function badge(status) {
  return h('span', { class: `badge badge-${String(status).replace(/[^a-z_]/g, '')}` }, label(status));
}

// Page numbers of a paginated answer, as links built by `href(page)`.
export function pager(page, href) {
  if (!page || page.pages <= 1) return null;
  const link = (n, text, rel) => (n >= 1 && n <= page.pages && n !== page.page
    ? h('a', { href: href(n), rel, class: 'btn btn-quiet' }, text)
    : h('span', { class: 'btn btn-quiet disabled', 'aria-disabled': 'true' }, text));
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    link(page.page - 1, 'Previous', 'prev'),
    h('span', { class: 'pager-at' }, `Page ${page.page} of ${page.pages}`),
    link(page.page + 1, 'Next', 'next'));
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// Client-side routing: same-origin links to a known page are followed without a reload.
export function router(routes, render, isOurs) {
  const go = async (url, replace = false) => {
    const target = new URL(url, location.href);
    if (replace) history.replaceState({}, '', target);
    else history.pushState({}, '', target);
    await render();
    window.scrollTo(0, 0);
  };
  document.addEventListener('click', (event) => {
    const a = event.target.closest && event.target.closest('a[href]');
    if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || a.target) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !isOurs(url.pathname)) return;
    event.preventDefault();
    go(url);
  });
  window.addEventListener('popstate', () => render());
  return go;
}

// The view for a path: [pattern, view] pairs, patterns with `:name` segments.
export function match(routes, path) {
  for (const [pattern, view] of routes) {
    const names = [];
    const re = new RegExp(`^${pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; })}/?$`);
    const m = path.match(re);
    if (m) return { view, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return null;
}

export function setTitle(shop, title) {
  document.title = title ? `${title} · ${shop}` : shop;
}

export function productImage(p, cls = 'thumb') {
  if (p.image_url) return h('img', { src: p.image_url, alt: '', class: cls, loading: 'lazy', width: 400, height: 400 });
  const initial = (p.title || p.product_title || '?').trim().charAt(0).toUpperCase();
  return h('div', { class: `${cls} placeholder`, 'aria-hidden': 'true', 'data-initial': initial });
}

export function addressText(a) {
  return [a.name, a.address_line1, a.address_line2, `${a.postal_code} ${a.city}`, a.state, a.country].filter(Boolean).join(', ');
}

// Items, payment, address and shipping history of an order (also used by the dashboard).
export function orderDetail(o, history) {
  return h('div', { class: 'order-grid' },
    h('div', { class: 'panel' },
      h('h2', {}, 'Items'),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Product', 'Price', 'Quantity', 'Total'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, o.items.map((i) => h('tr', {},
          h('td', {}, i.title), h('td', {}, money(i.price)), h('td', {}, String(i.quantity)), h('td', {}, money(i.total))))),
        h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, 'Total'), h('td', {}, h('strong', {}, money(o.total_price)))))))),
    h('div', { class: 'panel' },
      h('h2', {}, 'Payment'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, badge(o.payment.status)),
        h('dt', {}, 'Amount'), h('dd', {}, money(o.payment.amount)),
        h('dt', {}, 'Gateway'), h('dd', {}, o.payment.payment_gateway),
        h('dt', {}, 'Transaction'), h('dd', { class: 'mono' }, o.payment.transaction_id || '—'))),
    h('div', { class: 'panel' },
      h('h2', {}, 'Shipping'),
      h('p', {}, addressText(o.shipping_address)),
      history ? h('ol', { class: 'timeline' }, history.history.map((step) => h('li', {}, badge(step.status), ' ', h('span', { class: 'muted' }, date(step.at)))))
        : h('p', { class: 'muted' }, o.status === 'payment_failed' ? 'Nothing ships: the payment failed.' : 'No shipping yet.')));
}

