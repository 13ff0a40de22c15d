// The admin dashboard: every number and list comes from the API.
import {
  api, get, h, svg, clear, field, checkbox, messageBox, onSubmit, action, money, date, badge,
  pager, query, router, match, setTitle, setCurrency, productImage, ApiError, orderDetail, label,
} from './lib.js';

const main = document.getElementById('main');
const shop = { name: document.querySelector('.brand').firstChild.textContent.trim(), me: null };

const routes = [
  ['/admin', summaryPage],
  ['/admin/products', productsPage],
  ['/admin/products/new', productForm],
  ['/admin/products/:id', productForm],
  ['/admin/categories', categoriesPage],
  ['/admin/orders', ordersPage],
  ['/admin/orders/:id', orderPage],
  ['/admin/users', usersPage],
  ['/admin/outbox', outboxPage],
];

const go = router(routes, render, (path) => path === '/admin' || path.startsWith('/admin/'));

let flash = null;

let drawn = false;

async function render() {
  const found = match(routes, location.pathname);
  const params = new URLSearchParams(location.search);
  document.querySelectorAll('#admin-nav a').forEach((a) => {
    const path = new URL(a.href).pathname;
    const current = path === location.pathname || (path !== '/admin' && path !== '/' && location.pathname.startsWith(`${path}/`));
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  const notice = flash;
  flash = null;
  try {
    const content = found ? await found.view(found.params, params) : notFound();
    clear(main, notice ? h('p', { class: 'message ok', role: 'status' }, notice) : null, content);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      toLogin();
      return;
    }
    const box = messageBox();
    box.error(err);
    clear(main, h('h1', {}, 'Something went wrong'), box);
  }
  if (drawn) main.focus({ preventScroll: true });
  drawn = true;
}

function toLogin() {
  location.replace(`/login${query({ next: location.pathname + location.search, admin: 1 })}`);
}

function notFound() {
  setTitle(shop.name, 'Not found');
  return h('section', {}, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/admin' }, 'Back to the summary')));
}

// A one-field search whose submission opens `path` with the field in the query.
function searchForm(path, button, fieldEl) {
  const form = h('form', { class: 'inline-form', role: 'search' }, fieldEl, h('button', { type: 'submit' }, button));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    go(`${path}${query(Object.fromEntries(new FormData(form)))}`);
  });
  return form;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function table(headings, rows, caption) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows)));
}

// Summary.

function stat(title, value, sub) {
  return h('div', { class: 'stat' }, h('p', { class: 'stat-title' }, title), h('p', { class: 'stat-value' }, value), sub ? h('p', { class: 'muted small' }, sub) : null);
}

function chart(days) {
  const width = 600;
  const height = 160;
  const top = Math.max(...days.map((d) => d.revenue), 0);
  const step = width / days.length;
  const bar = step * 0.7;
  const bars = days.map((d, i) => {
    const barHeight = top > 0 ? Math.max(d.revenue > 0 ? 2 : 0, (d.revenue / top) * (height - 20)) : 0;
    return svg('rect', { x: (i * step + (step - bar) / 2).toFixed(1), y: (height - barHeight).toFixed(1), width: bar.toFixed(1), height: barHeight.toFixed(1), rx: 2, class: 'bar' },
      svg('title', {}, `${d.date}: ${money(d.revenue)}, ${d.orders} ${d.orders === 1 ? 'order' : 'orders'}`));
  });
  const figure = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title' },
    svg('title', { id: 'chart-title' }, `Revenue per day over the last ${days.length} days; the highest day ${money(top)}`),
    svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }),
    bars);
  return h('figure', { class: 'panel chart-panel' },
    h('figcaption', {}, h('h2', {}, 'Revenue, last 30 days'), h('span', { class: 'muted small' }, `${days[0].date} to ${days[days.length - 1].date} (UTC)`)),
    figure,
    h('details', {}, h('summary', {}, 'As a table'),
      table(['Day', 'Orders', 'Revenue', 'Cancelled', 'Failed payments'], days.slice().reverse().map((d) => h('tr', {},
        h('td', {}, d.date), h('td', {}, String(d.orders)), h('td', {}, money(d.revenue)), h('td', {}, String(d.cancelled)), h('td', {}, String(d.payment_failed)))), 'Sales per day')));
}

async function summaryPage() {
  setTitle(shop.name, 'Dashboard');
  const s = await get('/api/admin/summary');
  return h('section', { class: 'summary-page' },
    h('h1', {}, 'Summary'),
    h('div', { class: 'stats' },
      stat('Orders today', String(s.today.orders), s.today.payment_failed ? `${s.today.payment_failed} failed payments` : null),
      stat('Revenue today', money(s.today.revenue)),
      stat('Orders, 30 days', String(s.last_30_days.orders), s.last_30_days.cancelled ? `${s.last_30_days.cancelled} cancelled` : null),
      stat('Revenue, 30 days', money(s.last_30_days.revenue))),
    chart(s.days),
    h('div', { class: 'two-col' },
      h('section', { class: 'panel' },
        h('h2', {}, 'Latest orders'),
        s.latest_orders.length ? table(['Order', 'Placed', 'Total', 'Status', 'Shipping'], s.latest_orders.map((o) => h('tr', {},
          h('td', {}, h('a', { href: `/admin/orders/${o.id}` }, `#${o.id}`)),
          h('td', {}, date(o.created_at)),
          h('td', {}, money(o.total_price)),
          h('td', {}, badge(o.status)),
          h('td', {}, o.shipping_status ? badge(o.shipping_status) : '—')))) : h('p', { class: 'muted' }, 'No orders yet.'),
        h('p', {}, h('a', { href: '/admin/orders' }, 'All orders'))),
      h('section', { class: 'panel' },
        h('h2', {}, 'Low stock'),
        h('p', { class: 'muted small' }, `Products with ${s.low_stock_threshold} or fewer in stock.`),
        s.low_stock.length ? table(['Product', 'Stock', 'Price'], s.low_stock.map((p) => h('tr', {},
          h('td', {}, h('a', { href: `/admin/products/${p.id}` }, p.title)),
          h('td', {}, h('span', { class: p.stock_quantity === 0 ? 'badge badge-failed' : 'badge badge-pending' }, String(p.stock_quantity))),
          h('td', {}, money(p.price))))) : h('p', { class: 'muted' }, 'Every product is well stocked.'))));
}

// Products.

const ARCHIVE_RULE = 'Deleting a product takes it out of the catalog, search and carts. A product that past orders name is kept archived instead of erased, so those orders and the export stay whole.';

async function productsPage(_, params) {
  setTitle(shop.name, 'Products');
  const q = params.get('q') || '';
  const page = await get(`/api/products/search${query({ q, page: params.get('page'), limit: 20, sort: q ? '' : 'newest' })}`);
  const box = messageBox();
  const search = searchForm('/admin/products', 'Search', field('Search products', { name: 'q', type: 'search', value: q }));
  const rows = page.items.map((p) => {
    const del = h('td', { class: 'row-actions' },
      h('a', { href: `/admin/products/${p.id}`, class: 'btn btn-quiet' }, 'Edit'),
      deleteButton(`Delete ${p.title}`, async () => {
        await api('DELETE', `/api/products/${p.id}`);
        flash = `“${p.title}” is deleted.`;
        await render();
      }, box));
    return h('tr', {},
      h('td', {}, productImage(p, 'thumb tiny')),
      h('td', {}, h('a', { href: `/product/${encodeURIComponent(p.slug)}` }, p.title)),
      h('td', {}, money(p.price)),
      h('td', {}, String(p.stock_quantity)),
      h('td', {}, p.categories.map((c) => c.name).join(', ')),
      del);
  });
  return h('section', {},
    h('div', { class: 'section-head' }, h('h1', {}, 'Products'), h('a', { href: '/admin/products/new', class: 'btn' }, 'New product')),
    search,
    h('p', { class: 'muted small' }, ARCHIVE_RULE),
    box,
    page.items.length ? table(['', 'Title', 'Price', 'Stock', 'Categories', 'Actions'], rows, 'Products') : h('p', { class: 'empty' }, 'No products match.'),
    h('p', { class: 'muted small' }, plural(page.total, 'product')),
    pager(page, (n) => `/admin/products${query({ q, page: n })}`));
}

// A delete button that asks once more, in place.
function deleteButton(what, work, box) {
  const button = h('button', { type: 'button', class: 'btn btn-quiet btn-danger-text', 'aria-label': what }, 'Delete');
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = 'Confirm delete';
      button.setAttribute('aria-label', `Confirm: ${what}`);
      return;
    }
    button.disabled = true;
    box.reset();
    try {
      await work();
    } catch (err) {
      box.error(err);
      button.disabled = false;
    }
  });
  return button;
}

async function productForm({ id }) {
  const editing = id !== undefined;
  const [categories, p] = await Promise.all([
    get('/api/products/category/'),
    editing ? get(`/api/products/${encodeURIComponent(id)}`) : null,
  ]);
  setTitle(shop.name, editing ? `Edit ${p.title}` : 'New product');
  const box = messageBox();
  const chosen = new Set(editing ? p.categories.map((c) => c.id) : []);
  const form = onSubmit(h('form', { class: 'panel product-form' },
    h('div', { class: 'field-grid' },
      field('Title', { name: 'title', required: true, maxlength: 200, value: editing ? p.title : '' }),
      field('Slug', { name: 'slug', maxlength: 80, value: editing ? p.slug : '', pattern: '[a-z0-9-]*' }, { hint: 'Optional: made from the title when empty.' }),
      field('Price', { name: 'price', type: 'number', min: 0, step: '0.01', required: true, inputmode: 'decimal', value: editing ? p.price : '' }),
      field('Stock', { name: 'stock_quantity', type: 'number', min: 0, step: 1, required: true, inputmode: 'numeric', value: editing ? p.stock_quantity : '0' })),
    field('Description', { name: 'description', rows: 6, maxlength: 10000 }, { control: 'textarea' }),
    h('fieldset', {}, h('legend', {}, 'Categories'),
      categories.length ? h('div', { class: 'check-grid' }, categories.map((c) => checkbox(c.name, { name: 'category_ids', value: c.id, checked: chosen.has(c.id) })))
        : h('p', { class: 'muted' }, 'No categories yet: ', h('a', { href: '/admin/categories' }, 'add some'), '.')),
    h('div', { class: 'image-field' },
      editing ? productImage(p, 'thumb') : null,
      field('Image', { name: 'image', type: 'file', accept: 'image/png,image/jpeg,image/webp,image/gif' }, { hint: 'PNG, JPEG, WebP or GIF, up to 5 MiB.' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn' }, 'Save'), h('a', { href: '/admin/products', class: 'btn btn-quiet' }, 'Cancel')),
    box), box, async (data) => {
    const image = data.get('image');
    const hasImage = image && image.size > 0;
    let saved;
    if (editing) {
      saved = await api('PATCH', `/api/products/${p.id}`, { json: productJson(data) });
      if (hasImage) {
        const upload = new FormData();
        upload.append('file', image);
        saved = await api('POST', `/api/products/${p.id}/image`, { form: upload });
      }
    } else {
      if (!data.get('slug')) data.delete('slug');
      if (!hasImage) data.delete('image');
      saved = await api('POST', '/api/products', { form: data });
    }
    flash = `“${saved.title}” is saved.`;
    go(`/admin/products/${saved.id}`, true);
  });
  if (editing) form.querySelector('textarea').value = p.description;
  return h('section', {},
    h('div', { class: 'section-head' }, h('h1', {}, editing ? `Edit “${p.title}”` : 'New product'),
      editing ? h('a', { href: `/product/${encodeURIComponent(p.slug)}`, class: 'btn btn-quiet' }, 'View in the shop') : null),
    form,
    editing ? h('section', { class: 'panel' }, h('h2', {}, 'Delete'), h('p', {}, ARCHIVE_RULE),
      deleteButton(`Delete ${p.title}`, async () => {
        await api('DELETE', `/api/products/${p.id}`);
        flash = `“${p.title}” is deleted.`;
        go('/admin/products', true);
      }, box)) : null);
}

function productJson(data) {
  const json = {
    title: data.get('title'),
    description: data.get('description'),
    price: Number(data.get('price')),
    stock_quantity: Number(data.get('stock_quantity')),
    category_ids: data.getAll('category_ids').map(Number),
  };
  if (data.get('slug')) json.slug = data.get('slug');
  return json;
}

// Categories.

async function categoriesPage() {
  setTitle(shop.name, 'Categories');
  const categories = await get('/api/products/category/');
  const box = messageBox();
  const add = onSubmit(h('form', { class: 'inline-form' },
    field('Name', { name: 'name', required: true, maxlength: 100 }),
    h('button', { type: 'submit' }, 'Add category')), box, async (data) => {
    const c = await api('POST', '/api/products/category/', { json: { name: data.get('name') } });
    flash = `Category “${c.name}” is added.`;
    await render();
  });
  const rows = categories.map((c) => {
    const rename = onSubmit(h('form', { class: 'inline-form compact' },
      field(`Name of ${c.name}`, { name: 'name', value: c.name, required: true, maxlength: 100 }),
      h('button', { type: 'submit', class: 'btn btn-quiet' }, 'Save')), box, async (data) => {
      await api('PATCH', `/api/products/category/${c.id}`, { json: { name: data.get('name') } });
      flash = 'The category is renamed.';
      await render();
    });
    rename.querySelector('label').classList.add('visually-hidden');
    return h('tr', {},
      h('td', {}, rename),
      h('td', {}, h('a', { href: `/products${query({ category: c.slug })}` }, c.slug)),
      h('td', {}, String(c.product_count)),
      h('td', {}, deleteButton(`Delete ${c.name}`, async () => {
        await api('DELETE', `/api/products/category/${c.id}`);
        flash = `Category “${c.name}” is deleted; its products stay.`;
        await render();
      }, box)));
  });
  return h('section', {},
    h('h1', {}, 'Categories'),
    add,
    box,
    h('p', { class: 'muted small' }, 'Deleting a category leaves its products in the shop, without that category.'),
    categories.length ? table(['Name', 'Slug', 'Products', 'Actions'], rows, 'Categories') : h('p', { class: 'empty' }, 'No categories yet.'));
}

// Orders.

const ORDER_STATUSES = ['confirmed', 'payment_failed', 'cancelled'];
const SHIP_STATES = ['pending', 'processing', 'shipped', 'delivered', 'cancelled'];

async function ordersPage(_, params) {
  setTitle(shop.name, 'Orders');
  const filters = {
    status: params.get('status') || '',
    shipping_status: params.get('shipping_status') || '',
    user_id: params.get('user_id') || '',
  };
  const box = messageBox();
  const page = await get(`/api/orders/admin/all${query({ ...filters, page: params.get('page'), limit: 20 })}`).catch((err) => { box.error(err); return null; });
  const form = h('form', { class: 'inline-form filters-row', 'aria-label': 'Filter orders' },
    field('Status', { name: 'status' }, { control: 'select', options: [['', 'Any'], ...ORDER_STATUSES.map((s) => [s, label(s), s === filters.status])] }),
    field('Shipping status', { name: 'shipping_status' }, { control: 'select', options: [['', 'Any'], ...SHIP_STATES.map((s) => [s, label(s), s === filters.shipping_status])] }),
    field('Customer', { name: 'customer', value: params.get('customer') || filters.user_id, placeholder: 'Email or user id' }),
    h('button', { type: 'submit' }, 'Filter'),
    h('a', { href: '/admin/orders', class: 'btn btn-quiet' }, 'Clear'));
  onSubmit(form, box, async (data) => {
    const customer = String(data.get('customer') || '').trim();
    let userId = '';
    if (/^\d+$/.test(customer)) userId = customer;
    else if (customer) {
      const users = await get(`/api/account/users${query({ q: customer, limit: 100 })}`);
      const exact = users.items.filter((u) => u.email.toLowerCase() === customer.toLowerCase());
      const found = exact.length ? exact : users.items;
      if (found.length !== 1) throw new ApiError(404, { detail: found.length ? `${found.length} customers match “${customer}”: give the whole email.` : `No customer matches “${customer}”.` });
      userId = String(found[0].id);
    }
    go(`/admin/orders${query({ status: data.get('status'), shipping_status: data.get('shipping_status'), user_id: userId, customer: customer && !/^\d+$/.test(customer) ? customer : '' })}`);
  });
  return h('section', {},
    h('h1', {}, 'Orders'),
    form,
    box,
    page && page.items.length ? table(['Order', 'Placed', 'Customer', 'Items', 'Total', 'Status', 'Shipping'], page.items.map((o) => h('tr', {},
      h('td', {}, h('a', { href: `/admin/orders/${o.id}` }, `Order #${o.id}`)),
      h('td', {}, date(o.created_at)),
      h('td', {}, h('a', { href: `/admin/orders${query({ user_id: o.user_id })}` }, `User #${o.user_id}`)),
      h('td', {}, String(o.items.reduce((n, i) => n + i.quantity, 0))),
      h('td', {}, money(o.total_price)),
      h('td', {}, badge(o.status)),
      h('td', {}, o.shipping_status ? badge(o.shipping_status.status) : '—'))), 'Orders')
      : h('p', { class: 'empty' }, 'No orders match.'),
    page ? h('p', { class: 'muted small' }, plural(page.total, 'order')) : null,
    pager(page, (n) => `/admin/orders${query({ ...filters, customer: params.get('customer'), page: n })}`));
}

// The shipping states an admin may move to from `current` (SPEC's transitions).
function nextStates(current) {
  if (current === 'cancelled' || current === 'delivered') return [];
  const forward = SHIP_STATES.slice(SHIP_STATES.indexOf(current) + 1, 4);
  return ['pending', 'processing'].includes(current) ? [...forward, 'cancelled'] : forward;
}

async function orderPage({ id }) {
  const o = await get(`/api/orders/${encodeURIComponent(id)}`).catch((err) => {
    if (err.status === 404 || err.status === 422) return null;
    throw err;
  });
  if (!o) return notFound();
  setTitle(shop.name, `Order #${o.id}`);
  const history = o.shipping_status ? await get(`/api/shippings/status/${o.id}`) : null;
  const box = messageBox();
  let shipping = null;
  if (history) {
    const choices = nextStates(history.status);
    shipping = choices.length
      ? onSubmit(h('form', { class: 'panel inline-form' },
        h('h2', {}, 'Change shipping'),
        field('Shipping status', { name: 'status' }, { control: 'select', options: choices.map((s) => [s, label(s)]) }),
        h('button', { type: 'submit', class: 'btn' }, 'Save'),
        h('p', { class: 'muted small' }, `Now ${label(history.status)}. Shipping moves forward only; cancelling (before it ships) refunds the order and returns its stock.`),
        box), box, async (data) => {
        await api('PATCH', `/api/shippings/status/${o.id}`, { json: { status: data.get('status') } });
        flash = `Order #${o.id} is now ${label(data.get('status'))}; the customer is emailed.`;
        await render();
      })
      : h('p', { class: 'panel muted' }, `Shipping is ${label(history.status)}: nothing more to change.`);
  }
  return h('section', {},
    h('div', { class: 'section-head' }, h('h1', {}, `Order #${o.id}`), badge(o.status)),
    h('p', { class: 'muted' }, `Placed ${date(o.created_at)} by `, h('a', { href: `/admin/orders${query({ user_id: o.user_id })}` }, `user #${o.user_id}`)),
    shipping,
    orderDetail(o, history),
    h('p', {}, h('a', { href: '/admin/orders' }, 'All orders')));
}

// Users.

async function usersPage(_, params) {
  setTitle(shop.name, 'Users');
  const q = params.get('q') || '';
  const page = await get(`/api/account/users${query({ q, page: params.get('page'), limit: 20 })}`);
  const box = messageBox();
  const search = searchForm('/admin/users', 'Search', field('Search users', { name: 'q', type: 'search', value: q, placeholder: 'Email or name' }));
  const change = (u, json, done) => action(done.label, async () => {
    await api('PATCH', `/api/account/users/${u.id}`, { json });
    flash = `${u.email}: ${done.message}.`;
    await render();
  }, box, { class: 'btn btn-quiet', 'aria-label': `${done.label} ${u.email}` });
  const rows = page.items.map((u) => h('tr', {},
    h('td', {}, u.email), h('td', {}, u.name),
    h('td', {}, u.is_admin ? badge('admin') : 'customer'),
    h('td', {}, u.is_verified ? 'yes' : 'no'),
    h('td', {}, u.is_active ? 'active' : badge('inactive')),
    h('td', {}, date(u.created_at, false)),
    h('td', { class: 'row-actions' },
      h('a', { href: `/admin/orders${query({ user_id: u.id })}`, class: 'btn btn-quiet' }, 'Orders'),
      u.id === shop.me.id ? h('span', { class: 'muted small' }, 'you') : [
        u.is_admin ? change(u, { is_admin: false }, { label: 'Demote', message: 'no longer an admin' }) : change(u, { is_admin: true }, { label: 'Promote', message: 'now an admin' }),
        u.is_active ? change(u, { is_active: false }, { label: 'Deactivate', message: 'deactivated and logged out' }) : change(u, { is_active: true }, { label: 'Activate', message: 'active again' }),
      ])));
  return h('section', {},
    h('h1', {}, 'Users'),
    search,
    box,
    page.items.length ? table(['Email', 'Name', 'Role', 'Verified', 'State', 'Since', 'Actions'], rows, 'Users') : h('p', { class: 'empty' }, 'No users match.'),
    h('p', { class: 'muted small' }, plural(page.total, 'user')),
    pager(page, (n) => `/admin/users${query({ q, page: n })}`));
}

// Outbox.

async function outboxPage(_, params) {
  setTitle(shop.name, 'Outbox');
  const to = params.get('to') || '';
  const page = await get(`/api/admin/outbox${query({ to, page: params.get('page'), limit: 20 })}`);
  const search = searchForm('/admin/outbox', 'Filter', field('To', { name: 'to', type: 'email', value: to, placeholder: 'Any address' }));
  return h('section', {},
    h('h1', {}, 'Outbox'),
    h('p', { class: 'muted small' }, 'Every email the shop sent, newest first. Tokens in links are hidden here; without SMTP, the server log has the full links.'),
    search,
    page.items.length ? h('ul', { class: 'mail-list' }, page.items.map((m) => h('li', { class: 'panel' },
      h('p', {}, h('strong', {}, m.subject)),
      h('p', { class: 'muted small' }, `To ${m.to} · ${date(m.created_at)}`),
      h('details', {}, h('summary', {}, 'Message'), h('pre', { class: 'mail-body' }, m.body)))))
      : h('p', { class: 'empty' }, 'No emails yet.'),
    pager(page, (n) => `/admin/outbox${query({ to, page: n })}`));
}

async function start() {
  let me;
  try {
    me = await get('/api/account/me');
  } catch {
    toLogin();
    return;
  }
  if (!me.is_admin) {
    toLogin();
    return;
  }
  shop.me = me;
  const info = await get('/api/shop').catch(() => null);
  if (info) setCurrency(info.currency);
  document.getElementById('admin-nav').hidden = false;
  clear(document.getElementById('nav-user'), action('Log out', async () => {
    await api('POST', '/api/account/logout').catch(() => null);
    location.assign('/login');
  }, null, { class: 'link-button' }));
  await render();
  document.body.dataset.ready = 'true';
}

start();
