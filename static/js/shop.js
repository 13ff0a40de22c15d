// The storefront: every page is drawn here from the API.
import {
  api, get, h, clear, field, checkbox, messageBox, onSubmit, action, money, date, badge,
  pager, query, router, match, setTitle, setCurrency, productImage, ApiError, orderDetail, addressText,
} from './lib.js';

const main = document.getElementById('main');
const shop = { name: document.querySelector('.brand').textContent.trim(), me: null };

const routes = [
  ['/', home],
  ['/products', catalog],
  ['/product/:slug', productPage],
  ['/cart', cartPage],
  ['/checkout', checkoutPage],
  ['/orders', ordersPage],
  ['/orders/:id', orderPage],
  ['/account', accountPage],
  ['/login', loginPage],
  ['/register', registerPage],
  ['/forgot-password', forgotPage],
  ['/reset-password', resetPage],
  ['/verify-email', verifyPage],
];

const go = router(routes, render, (path) => match(routes, path) !== null);

// A notice carried to the next page (after a redirect within the app).
let flash = null;
function flashNext(text) { flash = text; }

// The first drawing leaves focus at the top of the page; later ones move it to the new
// content, as a page load would.
let drawn = false;

async function render() {
  const found = match(routes, location.pathname);
  const params = new URLSearchParams(location.search);
  document.getElementById('site-q').value = location.pathname === '/products' ? params.get('q') || '' : '';
  highlightNav();
  const view = found ? found.view : notFound;
  const notice = flash;
  flash = null;
  try {
    const content = await view(found ? found.params : {}, params);
    if (content) {
      clear(main, notice ? h('p', { class: 'message ok', role: 'status' }, notice) : null, content);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      go(`/login${query({ next: location.pathname + location.search })}`, true);
      return;
    }
    clear(main, h('section', { class: 'narrow' }, h('h1', {}, 'Something went wrong'), errorText(err)));
  }
  if (drawn) main.focus({ preventScroll: true });
  drawn = true;
}

function errorText(err) {
  const box = messageBox();
  box.error(err);
  return box;
}

function highlightNav() {
  document.querySelectorAll('.nav a').forEach((a) => {
    const path = new URL(a.href).pathname;
    if (path === location.pathname || (path !== '/' && location.pathname.startsWith(`${path}/`))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
}

function notFound() {
  setTitle(shop.name, 'Not found');
  return h('section', { class: 'narrow' }, h('h1', {}, 'Page not found'),
    h('p', {}, 'There is nothing here. ', h('a', { href: '/products' }, 'Browse the products'), '.'));
}

// The user, or a redirect to log in.
function requireLogin() {
  if (!shop.me) throw new ApiError(401, { detail: 'Log in first' });
  return shop.me;
}

async function loadMe() {
  try {
    shop.me = await get('/api/account/me');
  } catch {
    shop.me = null;
  }
  drawUserNav();
}

function drawUserNav() {
  const slot = document.getElementById('nav-user');
  if (shop.me) {
    clear(slot,
      h('a', { href: '/orders' }, 'Orders'),
      h('a', { href: '/account' }, 'Account'),
      shop.me.is_admin ? h('a', { href: '/admin' }, 'Dashboard') : null,
      action('Log out', logout, null, { class: 'link-button' }));
  } else {
    clear(slot, h('a', { href: '/login' }, 'Log in'), h('a', { href: '/register' }, 'Register'));
  }
  highlightNav();
}

async function logout() {
  try {
    await api('POST', '/api/account/logout');
  } catch {
    // Already logged out: the cookies are gone either way.
  }
  shop.me = null;
  drawUserNav();
  updateCartCount(0);
  flashNext('You are logged out.');
  go('/');
}

async function refreshCartCount() {
  if (!shop.me) return updateCartCount(0);
  try {
    const cart = await get('/api/carts');
    updateCartCount(cart.total_quantity);
  } catch {
    updateCartCount(0);
  }
}

function updateCartCount(n) {
  const el = document.getElementById('cart-count');
  el.hidden = !n;
  el.textContent = n ? String(n) : '';
  el.setAttribute('aria-label', `${n} items`);
}

// Catalog.

function productCard(p) {
  return h('li', { class: 'card product-card' },
    h('a', { href: `/product/${encodeURIComponent(p.slug)}`, class: 'card-link' },
      productImage(p),
      h('span', { class: 'card-title' }, p.title)),
    h('div', { class: 'card-meta' },
      h('span', { class: 'price' }, money(p.price)),
      p.in_stock ? (p.rating_count ? h('span', { class: 'rating', title: `${p.rating_avg} of 5` }, `★ ${p.rating_avg.toFixed(1)}`) : null)
        : h('span', { class: 'muted' }, 'Out of stock')));
}

function productGrid(items) {
  if (!items.length) return h('p', { class: 'empty' }, 'No products match.');
  return h('ul', { class: 'grid' }, items.map(productCard));
}

async function home() {
  setTitle(shop.name);
  const [categories, newest] = await Promise.all([
    get('/api/products/category/'),
    get('/api/products?limit=8&sort=newest'),
  ]);
  return h('div', {},
    h('section', { class: 'hero' },
      h('h1', {}, `Welcome to ${shop.name}`),
      h('p', {}, 'Find something you like, add it to your cart, and it is on its way.'),
      h('a', { href: '/products', class: 'btn' }, 'Browse all products')),
    categories.length ? h('section', {},
      h('h2', {}, 'Categories'),
      h('ul', { class: 'chips' }, categories.map((c) => h('li', {},
        h('a', { href: `/products${query({ category: c.slug })}`, class: 'chip' }, c.name, ' ', h('span', { class: 'muted' }, String(c.product_count))))))) : null,
    h('section', {},
      h('h2', {}, 'New in'),
      productGrid(newest.items)));
}

async function catalog(_, params) {
  const q = params.get('q') || '';
  const state = {
    q,
    category: params.get('category') || '',
    min_price: params.get('min_price') || '',
    max_price: params.get('max_price') || '',
    in_stock: params.get('in_stock') || '',
    sort: params.get('sort') || '',
    page: params.get('page') || '',
  };
  const listPath = q ? '/api/products/search' : '/api/products';
  const box = messageBox();
  const [categories, page] = await Promise.all([
    get('/api/products/category/'),
    get(listPath + query({ ...state, limit: 12 })).catch((err) => { box.error(err); return null; }),
  ]);
  const category = categories.find((c) => c.slug === state.category);
  setTitle(shop.name, q ? `Search: ${q}` : category ? category.name : 'Products');
  const sorts = [['', q ? 'Best match' : 'Newest'], ...(q ? [['newest', 'Newest']] : []), ['price_asc', 'Price: low to high'],
    ['price_desc', 'Price: high to low'], ['title', 'Name'], ['rating', 'Rating']];
  const filters = h('form', { class: 'filters', 'aria-label': 'Filters' },
    field('Search', { name: 'q', type: 'search', value: q }),
    field('Category', { name: 'category' }, {
      control: 'select',
      options: [['', 'All categories'], ...categories.map((c) => [c.slug, c.name, c.slug === state.category])],
    }),
    h('div', { class: 'row' },
      field('Min price', { name: 'min_price', type: 'number', min: 0, step: '0.01', value: state.min_price, inputmode: 'decimal' }),
      field('Max price', { name: 'max_price', type: 'number', min: 0, step: '0.01', value: state.max_price, inputmode: 'decimal' })),
    checkbox('In stock only', { name: 'in_stock', value: 'true', checked: state.in_stock === 'true' }),
    field('Sort by', { name: 'sort' }, {
      control: 'select',
      options: sorts.map(([v, t]) => [v, t, v === state.sort]),
    }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply filters'), h('a', { href: '/products', class: 'btn btn-quiet' }, 'Clear')));
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = Object.fromEntries([...new FormData(filters)].filter(([, v]) => v !== ''));
    go(`/products${query(data)}`);
  });
  const heading = q ? `Results for “${q}”` : category ? category.name : 'All products';
  return h('div', { class: 'catalog' },
    h('aside', {}, h('h2', { class: 'visually-hidden' }, 'Filters'), filters),
    h('section', { 'aria-labelledby': 'results-heading' },
      h('div', { class: 'section-head' },
        h('h1', { id: 'results-heading' }, heading),
        page ? h('p', { class: 'muted' }, `${page.total} ${page.total === 1 ? 'product' : 'products'}`) : null),
      box,
      page ? productGrid(page.items) : null,
      pager(page, (n) => `/products${query({ ...state, page: n })}`)));
}

async function productPage({ slug }) {
  const p = await get(`/api/products/${encodeURIComponent(slug)}`).catch((err) => {
    if (err.status === 404) return null;
    throw err;
  });
  if (!p) return notFound();
  setTitle(shop.name, p.title);
  const box = messageBox();
  const qty = field('Quantity', { name: 'quantity', type: 'number', min: 1, max: Math.max(1, p.stock_quantity), value: 1, inputmode: 'numeric', required: true });
  const buy = onSubmit(h('form', { class: 'buy' }, qty, h('button', { type: 'submit', disabled: !p.in_stock }, 'Add to cart'), box), box, async (data) => {
    if (!shop.me) {
      go(`/login${query({ next: location.pathname })}`);
      return;
    }
    await api('POST', '/api/carts/add', { json: { product_id: p.id, quantity: Number(data.get('quantity')) } });
    await refreshCartCount();
    box.ok('Added to your cart. ', h('a', { href: '/cart' }, 'View cart'), ' · ', h('a', { href: '/checkout' }, 'Checkout'));
  });
  const reviews = h('section', { class: 'reviews', 'aria-labelledby': 'reviews-heading' });
  const page = h('article', { class: 'product' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/products' }, 'Products'),
      p.categories[0] ? [' / ', h('a', { href: `/products${query({ category: p.categories[0].slug })}` }, p.categories[0].name)] : null),
    h('div', { class: 'product-main' },
      h('div', { class: 'product-image' }, productImage(p, 'hero-image')),
      h('div', { class: 'product-info' },
        h('h1', {}, p.title),
        h('p', { class: 'price big' }, money(p.price)),
        h('p', { class: p.in_stock ? 'stock' : 'stock out' }, p.in_stock ? `In stock: ${p.stock_quantity}` : 'Out of stock'),
        p.rating_count ? h('p', { class: 'rating' }, `★ ${p.rating_avg.toFixed(1)} from ${p.rating_count} ${p.rating_count === 1 ? 'review' : 'reviews'}`) : null,
        buy,
        p.categories.length ? h('ul', { class: 'chips' }, p.categories.map((c) => h('li', {}, h('a', { class: 'chip', href: `/products${query({ category: c.slug })}` }, c.name)))) : null,
        h('div', { class: 'description' }, p.description.split(/\n{2,}/).map((para) => h('p', {}, para))))),
    reviews);
  drawReviews(reviews, p);
  return page;
}

async function drawReviews(section, p, pageNo = 1) {
  const list = await get(`/api/products/${p.id}/reviews${query({ page: pageNo, limit: 10 })}`);
  const mine = shop.me ? await findMyReview(p.id, list) : null;
  const bought = shop.me && !mine ? await hasBought(p.id) : false;
  clear(section,
    h('h2', { id: 'reviews-heading' }, 'Reviews'),
    mine ? myReview(section, p, mine) : bought ? reviewForm(section, p, null) : null,
    list.items.length ? h('ul', { class: 'review-list' }, list.items.filter((r) => !mine || r.id !== mine.id).map(reviewItem))
      : (mine ? null : h('p', { class: 'muted' }, 'No reviews yet.')),
    list.pages > pageNo ? action('More reviews', () => drawReviews(section, p, pageNo + 1), null, { class: 'btn btn-quiet' }) : null);
}

async function findMyReview(productId, first) {
  let page = first;
  for (let n = 1; n <= 20; n += 1) {
    const found = page.items.find((r) => r.user_id === shop.me.id);
    if (found || n >= page.pages) return found || null;
    page = await get(`/api/products/${productId}/reviews${query({ page: n + 1, limit: 100 })}`);
  }
  return null;
}

async function hasBought(productId) {
  const orders = await get('/api/orders?limit=100').catch(() => ({ items: [] }));
  return orders.items.some((o) => o.status === 'confirmed' && o.items.some((i) => i.product_id === productId));
}

function stars(n) { return '★'.repeat(n) + '☆'.repeat(5 - n); }

function reviewItem(r) {
  return h('li', { class: 'review' },
    h('p', { class: 'review-head' }, h('span', { class: 'stars', 'aria-label': `${r.rating} of 5` }, stars(r.rating)), ' ', h('strong', {}, r.title || '')),
    r.body ? h('p', {}, r.body) : null,
    h('p', { class: 'muted small' }, `${r.user_name} · ${date(r.created_at, false)}`));
}

function myReview(section, p, r) {
  const box = messageBox();
  return h('div', { class: 'panel' },
    h('h3', {}, 'Your review'),
    reviewItem(r),
    h('div', { class: 'actions' },
      action('Edit review', async () => { clear(section, h('h2', { id: 'reviews-heading' }, 'Reviews'), reviewForm(section, p, r)); }, box, { class: 'btn btn-quiet' }),
      action('Delete review', async () => { await api('DELETE', `/api/products/reviews/${r.id}`); await drawReviews(section, p); }, box, { class: 'btn btn-quiet' })),
    box);
}

function reviewForm(section, p, existing) {
  const box = messageBox();
  const form = h('form', { class: 'panel review-form' },
    h('h3', {}, existing ? 'Edit your review' : 'Review this product'),
    field('Rating', { name: 'rating' }, { control: 'select', options: [5, 4, 3, 2, 1].map((n) => [String(n), `${stars(n)} (${n})`, existing && existing.rating === n]) }),
    field('Title', { name: 'title', maxlength: 200, value: existing ? existing.title : '' }),
    field('Your review', { name: 'body', rows: 4, maxlength: 5000 }, { control: 'textarea' }),
    h('button', { type: 'submit' }, existing ? 'Save review' : 'Post review'),
    box);
  if (existing) form.querySelector('textarea').value = existing.body || '';
  return onSubmit(form, box, async (data) => {
    const json = { rating: Number(data.get('rating')), title: data.get('title'), body: data.get('body') };
    if (existing) await api('PUT', `/api/products/${p.id}/reviews/mine`, { json });
    else await api('POST', `/api/products/${p.id}/reviews`, { json });
    await drawReviews(section, p);
  });
}

// Cart and checkout.

async function cartPage() {
  requireLogin();
  setTitle(shop.name, 'Cart');
  const cart = await get('/api/carts');
  updateCartCount(cart.total_quantity);
  const box = messageBox();
  const redraw = async () => { clear(main, await cartPage()); };
  if (!cart.items.length) {
    return h('section', { class: 'narrow' }, h('h1', {}, 'Your cart'), h('p', { class: 'empty' }, 'Your cart is empty. ', h('a', { href: '/products' }, 'Browse the products'), '.'));
  }
  const rows = cart.items.map((item) => h('li', { class: 'cart-line' },
    productImage({ ...item, title: item.product_title }, 'thumb small'),
    h('div', { class: 'cart-title' },
      h('a', { href: `/product/${encodeURIComponent(item.slug)}` }, item.product_title),
      h('span', { class: 'muted' }, `${money(item.price)} each`)),
    h('div', { class: 'qty', role: 'group', 'aria-label': `Quantity of ${item.product_title}` },
      action('−', async () => { await api('PATCH', `/api/carts/decrease/${item.product_id}`); await redraw(); }, box, { class: 'btn btn-quiet btn-icon', 'aria-label': `One fewer ${item.product_title}` }),
      h('span', { class: 'qty-n', 'aria-live': 'polite' }, String(item.quantity)),
      action('+', async () => { await api('PATCH', `/api/carts/increase/${item.product_id}`); await redraw(); }, box, { class: 'btn btn-quiet btn-icon', 'aria-label': `One more ${item.product_title}` })),
    h('span', { class: 'line-total' }, money(item.total)),
    action('Remove', async () => { await api('DELETE', `/api/carts/delete/${item.id}`); await redraw(); }, box, { class: 'link-button', 'aria-label': `Remove ${item.product_title}` })));
  return h('section', { class: 'cart' },
    h('h1', {}, 'Your cart'),
    box,
    h('ul', { class: 'cart-lines' }, rows),
    h('div', { class: 'cart-total' },
      h('p', {}, `${cart.total_quantity} ${cart.total_quantity === 1 ? 'item' : 'items'}, total `, h('strong', { class: 'price' }, money(cart.total_price))),
      h('a', { href: '/checkout', class: 'btn' }, 'Checkout')));
}

const ADDRESS_FIELDS = [
  ['name', 'Full name', { autocomplete: 'name' }],
  ['phone', 'Phone', { autocomplete: 'tel', type: 'tel' }],
  ['address_line1', 'Address line 1', { autocomplete: 'address-line1', required: true }],
  ['address_line2', 'Address line 2', { autocomplete: 'address-line2' }],
  ['city', 'City', { autocomplete: 'address-level2', required: true }],
  ['state', 'State or region', { autocomplete: 'address-level1', required: true }],
  ['postal_code', 'Postal code', { autocomplete: 'postal-code', required: true }],
  ['country', 'Country', { autocomplete: 'country-name', required: true }],
];


async function checkoutPage() {
  requireLogin();
  setTitle(shop.name, 'Checkout');
  const [cart, addresses] = await Promise.all([get('/api/carts'), get('/api/shippings/addresses')]);
  if (!cart.items.length) {
    return h('section', { class: 'narrow' }, h('h1', {}, 'Checkout'), h('p', { class: 'empty' }, 'Your cart is empty. ', h('a', { href: '/products' }, 'Browse the products'), '.'));
  }
  const box = messageBox();
  const addrBox = messageBox();
  const choices = h('div', { class: 'address-choices' });
  const drawChoices = (list, selected) => {
    clear(choices, list.length
      ? h('fieldset', {}, h('legend', {}, 'Ship to'), list.map((a, i) => {
        const id = `addr-${a.id}`;
        return h('div', { class: 'radio' },
          h('input', { type: 'radio', name: 'shipping_address_id', value: a.id, id, checked: selected ? a.id === selected : i === 0 }),
          h('label', { for: id }, addressText(a)));
      }))
      : h('p', { class: 'muted' }, 'Add a shipping address below.'));
  };
  drawChoices(addresses);
  const newAddress = onSubmit(h('form', { class: 'address-form' },
    h('div', { class: 'field-grid' }, ADDRESS_FIELDS.map(([name, text, attrs]) => field(text, { name, ...attrs }))),
    h('button', { type: 'submit', class: 'btn btn-quiet' }, 'Save address'),
    addrBox), addrBox, async (data) => {
    const created = await api('POST', '/api/shippings/addresses', { json: Object.fromEntries(data) });
    addresses.push(created);
    drawChoices(addresses, created.id);
    newAddress.reset();
    details.open = false;
  });
  const details = h('details', { class: 'add-address', open: !addresses.length }, h('summary', {}, 'Add a new address'), newAddress);
  // One key per attempt: a double click or a retry after a lost answer places one order.
  let idempotencyKey = crypto.randomUUID();
  const order = onSubmit(h('form', { class: 'place-order' },
    choices,
    h('fieldset', {}, h('legend', {}, 'Payment'),
      h('p', { class: 'muted small' }, 'Payments in this shop are simulated: nothing is charged.'),
      field('Simulated payment', { name: 'simulate' }, { control: 'select', options: [['success', 'Succeeds'], ['failure', 'Fails (declined)']] })),
    h('div', { class: 'cart-total' },
      h('p', {}, 'Total ', h('strong', { class: 'price' }, money(cart.total_price))),
      h('button', { type: 'submit', class: 'btn' }, 'Place order')),
    box), box, async (data) => {
    const addressId = Number(data.get('shipping_address_id'));
    if (!addressId) throw new ApiError(422, { detail: 'Choose a shipping address, or add one.' });
    try {
      const placed = await api('POST', '/api/orders/checkout', {
        json: { shipping_address_id: addressId, gateway: 'mock', simulate_success: data.get('simulate') !== 'failure', amount: cart.total_price },
        headers: { 'Idempotency-Key': idempotencyKey },
      });
      await refreshCartCount();
      flashNext('Thank you! Your order is placed.');
      go(`/orders/${placed.id}`);
    } catch (err) {
      if (err.status !== 0) idempotencyKey = crypto.randomUUID();
      if (err.status === 402 && err.body && err.body.order_id) {
        box.error(err);
        box.append(h('p', {}, h('a', { href: `/orders/${err.body.order_id}` }, `See order #${err.body.order_id}`), '. Your cart is unchanged: you can try again.'));
        return;
      }
      throw err;
    }
  });
  return h('section', { class: 'checkout' },
    h('h1', {}, 'Checkout'),
    h('div', { class: 'checkout-grid' },
      h('div', {}, order, details),
      h('aside', { class: 'panel summary' },
        h('h2', {}, 'Your order'),
        h('ul', { class: 'summary-lines' }, cart.items.map((i) => h('li', {}, h('span', {}, `${i.quantity} × ${i.product_title}`), h('span', {}, money(i.total))))),
        h('p', { class: 'summary-total' }, h('span', {}, 'Total'), h('strong', {}, money(cart.total_price))),
        h('a', { href: '/cart' }, 'Change the cart'))));
}

// Orders.

async function ordersPage(_, params) {
  requireLogin();
  setTitle(shop.name, 'Orders');
  const page = await get(`/api/orders${query({ page: params.get('page'), limit: 20 })}`);
  return h('section', {},
    h('h1', {}, 'Your orders'),
    page.items.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Order', 'Placed', 'Items', 'Total', 'Status', 'Shipping'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, page.items.map((o) => h('tr', {},
        h('td', {}, h('a', { href: `/orders/${o.id}` }, `Order #${o.id}`)),
        h('td', {}, date(o.created_at)),
        h('td', {}, String(o.items.reduce((n, i) => n + i.quantity, 0))),
        h('td', {}, money(o.total_price)),
        h('td', {}, badge(o.status)),
        h('td', {}, o.shipping_status ? badge(o.shipping_status.status) : '—'))))))
      : h('p', { class: 'empty' }, 'No orders yet. ', h('a', { href: '/products' }, 'Start shopping'), '.'),
    pager(page, (n) => `/orders${query({ page: n })}`));
}

async function orderPage({ id }) {
  requireLogin();
  const o = await get(`/api/orders/${encodeURIComponent(id)}`).catch((err) => {
    if (err.status === 404 || err.status === 422) return null;
    throw err;
  });
  if (!o) return notFound();
  setTitle(shop.name, `Order #${o.id}`);
  const history = o.shipping_status ? await get(`/api/shippings/status/${o.id}`).catch(() => null) : null;
  const box = messageBox();
  const cancellable = o.status === 'confirmed' && o.shipping_status && ['pending', 'processing'].includes(o.shipping_status.status);
  return h('section', { class: 'order' },
    h('div', { class: 'section-head' }, h('h1', {}, `Order #${o.id}`), badge(o.status)),
    h('p', { class: 'muted' }, `Placed ${date(o.created_at)}`),
    box,
    orderDetail(o, history),
    cancellable ? h('div', { class: 'actions' }, action('Cancel order', async () => {
      await api('PATCH', `/api/orders/cancel/${o.id}`);
      flashNext('Your order is cancelled and refunded.');
      await render();
    }, box, { class: 'btn btn-danger' })) : null,
    h('p', {}, h('a', { href: '/orders' }, 'All your orders')));
}

// Account.

async function accountPage() {
  const me = requireLogin();
  setTitle(shop.name, 'Account');
  const nameBox = messageBox();
  const passBox = messageBox();
  const verifyBox = messageBox();
  const addresses = await get('/api/shippings/addresses');
  const addrBox = messageBox();
  const profile = onSubmit(h('form', { class: 'panel' },
    h('h2', {}, 'Profile'),
    h('p', {}, h('span', { class: 'muted' }, 'Email: '), me.email, ' ', me.is_verified ? badge('verified') : badge('not_verified')),
    field('Name', { name: 'name', value: me.name, required: true, maxlength: 100, autocomplete: 'name' }),
    h('button', { type: 'submit' }, 'Save name'),
    nameBox), nameBox, async (data) => {
    shop.me = await api('PATCH', '/api/account/me', { json: { name: data.get('name') } });
    nameBox.ok('Your name is saved.');
  });
  const password = onSubmit(h('form', { class: 'panel' },
    h('h2', {}, 'Change password'),
    field('Current password', { name: 'current_password', type: 'password', required: true, autocomplete: 'current-password' }),
    field('New password', { name: 'new_password', type: 'password', required: true, minlength: 8, maxlength: 128, autocomplete: 'new-password' }, { hint: '8 to 128 characters.' }),
    h('button', { type: 'submit' }, 'Change password'),
    passBox), passBox, async (data) => {
    await api('POST', '/api/account/change-password', { json: Object.fromEntries(data) });
    password.reset();
    passBox.ok('Your password is changed. Your other sessions are logged out.');
  });
  return h('section', {},
    h('h1', {}, 'Your account'),
    me.is_verified ? null : h('div', { class: 'panel notice' },
      h('p', {}, 'Your email address is not verified yet. Open the link we emailed you, or get a new one.'),
      action('Send verification email', async () => {
        await api('POST', '/api/account/verify-request');
        verifyBox.ok('A new verification link is on its way.');
      }, verifyBox, { class: 'btn btn-quiet' }),
      verifyBox),
    h('div', { class: 'account-grid' }, profile, password,
      h('div', { class: 'panel' },
        h('h2', {}, 'Addresses'),
        addrBox,
        addresses.length ? h('ul', { class: 'plain-list' }, addresses.map((a) => h('li', {},
          h('span', {}, addressText(a)), ' ',
          action('Delete', async () => { await api('DELETE', `/api/shippings/addresses/${a.id}`); clear(main, await accountPage()); }, addrBox, { class: 'link-button', 'aria-label': `Delete address ${a.address_line1}` }))))
          : h('p', { class: 'muted' }, 'You add addresses at checkout.'))),
    h('p', {}, h('a', { href: '/orders' }, 'Your orders'), ' · ', action('Log out', logout, null, { class: 'link-button' })));
}

function safeNext(params) {
  const next = params.get('next') || '';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function loginPage(_, params) {
  setTitle(shop.name, 'Log in');
  const box = messageBox();
  const next = safeNext(params);
  const form = onSubmit(h('form', { class: 'panel narrow-form' },
    h('h1', {}, 'Log in'),
    params.get('admin') ? h('p', { class: 'message' }, 'The dashboard is for admins: log in with an admin account.') : null,
    field('Email', { name: 'email', type: 'email', required: true, autocomplete: 'username' }),
    field('Password', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' }),
    h('button', { type: 'submit', class: 'btn' }, 'Log in'),
    box,
    h('p', { class: 'small' }, h('a', { href: '/forgot-password' }, 'Forgot your password?'), ' · ', h('a', { href: `/register${query({ next: params.get('next') })}` }, 'Register'))),
  box, async (data) => {
    const answer = await api('POST', '/api/account/login', { json: Object.fromEntries(data) });
    shop.me = answer.user;
    drawUserNav();
    await refreshCartCount();
    if (next.startsWith('/admin')) {
      location.assign(next);
      return;
    }
    flashNext(`Welcome back, ${answer.user.name}.`);
    go(next);
  });
  return h('section', { class: 'narrow' }, form);
}

function registerPage(_, params) {
  setTitle(shop.name, 'Register');
  const box = messageBox();
  const form = onSubmit(h('form', { class: 'panel narrow-form' },
    h('h1', {}, 'Register'),
    field('Name', { name: 'name', maxlength: 100, autocomplete: 'name' }, { hint: 'Optional.' }),
    field('Email', { name: 'email', type: 'email', required: true, autocomplete: 'email' }),
    field('Password', { name: 'password', type: 'password', required: true, minlength: 8, maxlength: 128, autocomplete: 'new-password' }, { hint: '8 to 128 characters.' }),
    h('button', { type: 'submit', class: 'btn' }, 'Register'),
    box,
    h('p', { class: 'small' }, 'Have an account? ', h('a', { href: '/login' }, 'Log in'))),
  box, async (data) => {
    const json = Object.fromEntries([...data].filter(([k, v]) => k !== 'name' || v.trim() !== ''));
    await api('POST', '/api/account/register', { json });
    const answer = await api('POST', '/api/account/login', { json: { email: json.email, password: json.password } });
    shop.me = answer.user;
    drawUserNav();
    flashNext(`Welcome, ${answer.user.name}! We sent a link to ${answer.user.email}: open it to verify your email.`);
    go(safeNext(params) === '/' ? '/account' : safeNext(params));
  });
  return h('section', { class: 'narrow' }, form);
}

function forgotPage() {
  setTitle(shop.name, 'Forgot password');
  const box = messageBox();
  const form = onSubmit(h('form', { class: 'panel narrow-form' },
    h('h1', {}, 'Forgot your password?'),
    h('p', {}, 'Enter your email: if an account has it, we send a link to choose a new password. The link works for 30 minutes.'),
    field('Email', { name: 'email', type: 'email', required: true, autocomplete: 'email' }),
    h('button', { type: 'submit', class: 'btn' }, 'Send reset link'),
    box), box, async (data) => {
    await api('POST', '/api/account/forgot-password', { json: { email: data.get('email') } });
    box.ok('If an account has this email, a reset link is on its way. Check your inbox.');
  });
  return h('section', { class: 'narrow' }, form);
}

// The token of an emailed link, taken out of the address bar once read.
function takeToken(params) {
  const token = params.get('token');
  if (token) history.replaceState({}, '', location.pathname);
  return token;
}

let resetToken = null;
function resetPage(_, params) {
  setTitle(shop.name, 'Choose a new password');
  resetToken = takeToken(params) || resetToken;
  const box = messageBox();
  if (!resetToken) {
    return h('section', { class: 'narrow' }, h('h1', {}, 'Choose a new password'),
      h('p', {}, 'This page needs the link from your reset email. ', h('a', { href: '/forgot-password' }, 'Get a new link'), '.'));
  }
  const form = onSubmit(h('form', { class: 'panel narrow-form' },
    h('h1', {}, 'Choose a new password'),
    field('New password', { name: 'new_password', type: 'password', required: true, minlength: 8, maxlength: 128, autocomplete: 'new-password' }, { hint: '8 to 128 characters.' }),
    h('button', { type: 'submit', class: 'btn' }, 'Reset password'),
    box), box, async (data) => {
    await api('POST', '/api/account/reset-password', { json: { token: resetToken, new_password: data.get('new_password') } });
    resetToken = null;
    shop.me = null;
    drawUserNav();
    flashNext('Your password is changed. Log in with the new one.');
    go('/login', true);
  });
  return h('section', { class: 'narrow' }, form);
}

async function verifyPage(_, params) {
  setTitle(shop.name, 'Verify email');
  const token = takeToken(params);
  const box = messageBox();
  if (!token) {
    box.error(new ApiError(400, { detail: 'This page needs the link from your verification email.' }));
  } else {
    try {
      const answer = await api('GET', `/api/account/verify${query({ token })}`);
      if (shop.me) shop.me = answer.user;
      box.ok(`Thank you: ${answer.user.email} is verified.`);
    } catch (err) {
      box.error(err);
    }
  }
  return h('section', { class: 'narrow' },
    h('div', { class: 'panel narrow-form' },
      h('h1', {}, 'Verify your email'),
      box,
      shop.me ? h('p', {}, h('a', { href: '/account' }, 'Your account'), shop.me.is_verified ? null : [' · you can ask for a new link there']) : h('p', {}, h('a', { href: '/login' }, 'Log in'), ' · ', h('a', { href: '/products' }, 'Browse the products'))));
}

// The header's search goes through the router too.
document.querySelector('.site-header .search').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = document.getElementById('site-q').value.trim();
  go(`/products${query({ q })}`);
});

async function start() {
  const info = await get('/api/shop').catch(() => null);
  if (info) setCurrency(info.currency);
  await loadMe();
  refreshCartCount();
  await render();
  document.body.dataset.ready = 'true';
}

start();

