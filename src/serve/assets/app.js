// memplan's page. It builds its form from GET /api/settings, sends the inputs as a scenario
// (a JSON object of the settings' texts, exactly what the CLI's flags would carry) to
// POST /api/estimate or /api/plan, and draws the answer. It converts and displays only: the
// library validates, and its error (the CLI's `error:` and `hint:` lines) is shown next to the
// input it names.
'use strict';

// ---------------------------------------------------------------------------------------------
// small helpers

const $ = (sel, root = document) => root.querySelector(sel);
const SVG_NS = 'http://www.w3.org/2000/svg';

/** An element with attributes (set with setAttribute; never `style`, which the CSP refuses). */
function el(tag, attrs, ...children) {
  const svg = ['svg', 'rect', 'line', 'text', 'g', 'title', 'path'].includes(tag);
  const e = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** JSON with integers beyond 2^53 kept exact (as BigInt), from the number's source text. */
function parseExact(text) {
  return JSON.parse(text, (key, value, ctx) => {
    if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) &&
        ctx && typeof ctx.source === 'string' && /^-?\d+$/.test(ctx.source)) {
      return BigInt(ctx.source);
    }
    return value;
  });
}

const isZero = (b) => (typeof b === 'bigint' ? b === 0n : b === 0);
const isNeg = (b) => (typeof b === 'bigint' ? b < 0n : b < 0);
const neg = (b) => (typeof b === 'bigint' ? -b : -b);
/** Exact sum of two byte counts (BigInt once it leaves the exact range of a double). */
function addBytes(a, b) {
  if (typeof a === 'number' && typeof b === 'number' && Number.isSafeInteger(a + b)) return a + b;
  return BigInt(a) + BigInt(b);
}

/**
 * `x` with `d` decimals exactly as Rust's `format!("{:.d}", x)` writes it: the exact binary
 * value of the double rounded half to even (JavaScript's toFixed rounds ties up instead).
 */
function fixed(x, d) {
  if (!Number.isFinite(x)) return String(x);
  if (x < 0) return '-' + fixed(-x, d);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e;
  if (exp === 0) e = -1074; else { mant |= 1n << 52n; e = exp - 1075; }
  let num = mant * 10n ** BigInt(d);
  let den = 1n;
  if (e >= 0) num <<= BigInt(e); else den <<= BigInt(-e);
  let q = num / den;
  const r2 = (num % den) * 2n;
  if (r2 > den || (r2 === den && (q & 1n) === 1n)) q += 1n;
  const s = q.toString().padStart(d + 1, '0');
  return d ? s.slice(0, s.length - d) + '.' + s.slice(s.length - d) : s;
}

const UNITS = {
  gib: { label: 'GiB', div: 2 ** 30, small: 'MiB', sdiv: 2 ** 20 },
  gb: { label: 'GB', div: 1e9, small: 'MB', sdiv: 1e6 },
};

/** Bytes as the CLI shows them (`ByteUnits::format`): `12.34 GiB`, small values in MiB. */
function fmtBytes(b) {
  const u = UNITS[state.units];
  if (isNeg(b)) return '-' + fmtBytes(neg(b));
  if (isZero(b)) return '0 ' + u.label;
  const n = Number(b);
  const v = n / u.div;
  if (v < 0.1) return fixed(n / u.sdiv, 2) + ' ' + u.small;
  return fixed(v, 2) + ' ' + u.label;
}

/** A count as the CLI shows it (`format_count`): `124.4M`, `6.74B`. */
function fmtCount(n) {
  const v = Number(n);
  if (v >= 1e15) {
    let exp = Math.floor(Math.log10(v));
    let m = fixed(v / 10 ** exp, 2);
    if (m === '10.00') { exp += 1; m = fixed(v / 10 ** exp, 2); }
    return m + 'e' + exp;
  }
  if (v >= 1e12) return fixed(v / 1e12, 2) + 'T';
  if (v >= 1e9) return fixed(v / 1e9, 2) + 'B';
  if (v >= 1e6) return fixed(v / 1e6, 1) + 'M';
  if (v >= 1e3) return fixed(v / 1e3, 1) + 'K';
  return String(n);
}

/** A cell showing bytes, with the exact integer kept for copying and for tests. */
const bytesCell = (b, cls = 'num') => el('td', { class: cls, 'data-bytes': String(b), title: `${b} bytes` }, fmtBytes(b));

// ---------------------------------------------------------------------------------------------
// the form

/** Where each setting sits. Display only: any setting not listed lands in "Other settings". */
const MODEL_SOURCES = [
  ['model', 'Preset'],
  ['hf-config', 'config.json'],
  ['params', 'Parameter count'],
  ['model-file', 'model.toml'],
];
const SECTIONS = [
  { id: 'model', title: 'Model', main: [], more: ['layers', 'hidden', 'heads', 'kv-heads', 'ffn', 'vocab', 'image-size'], moreTitle: 'Shape overrides' },
  { id: 'step', title: 'Training step', main: ['phase', 'precision', 'framework', 'batch', 'seq', 'recompute', 'attention'],
    more: ['optimizer', 'optimizer-impl', 'tgt-seq', 'dropout', 'capacity-factor', 'framework-version', 'runtime', 'cuda-context', 'fragmentation'] },
  { id: 'parallel', title: 'Parallel plan', main: ['tp', 'pp', 'dp', 'cp', 'ep', 'zero', 'fsdp', 'sp'],
    more: ['schedule', 'vpp', 'microbatches', 'distributed-optimizer', 'offload', 'deepspeed-config'] },
  { id: 'cluster', title: 'GPUs and cluster', main: ['gpu', 'gpus', 'gpus-per-node', 'global-batch', 'tokens', 'price'],
    more: ['headroom', 'efficiency', 'overlap', 'allow-offload', 'max-tp', 'max-pp', 'max-cp', 'top', 'calibration'] },
  { id: 'finetune', title: 'Fine-tuning (LoRA / QLoRA)', collapsed: true, group: 'fine-tune' },
  { id: 'serving', title: 'Serving (inference)', collapsed: true, group: 'serving' },
  { id: 'other', title: 'Other settings', collapsed: true },
];
const LABELS = {
  model: 'Model preset', 'hf-config': 'Hugging Face config.json', params: 'Parameters', 'model-file': 'Model TOML',
  phase: 'Phase', precision: 'Precision', framework: 'Framework', batch: 'Micro-batch', seq: 'Sequence length',
  recompute: 'Recomputation', attention: 'Attention kernel', optimizer: 'Optimizer', tp: 'Tensor parallel (tp)',
  pp: 'Pipeline stages (pp)', dp: 'Data parallel (dp)', cp: 'Context parallel (cp)', ep: 'Expert parallel (ep)',
  zero: 'ZeRO stage', fsdp: 'FSDP', sp: 'Sequence parallel', gpu: 'GPU', gpus: 'GPUs in total',
  'gpus-per-node': 'GPUs per node', 'global-batch': 'Global batch', tokens: 'Training tokens', price: 'Price per GPU-hour ($)',
};
const WORDS = { kv: 'KV', gpu: 'GPU', gpus: 'GPUs', lora: 'LoRA', qlora: 'QLoRA', cuda: 'CUDA', vllm: 'vLLM', ffn: 'FFN',
  tp: 'TP', pp: 'PP', cp: 'CP', dp: 'DP', ep: 'EP', vpp: 'VPP', tgt: 'target', seq: 'sequence', impl: 'implementation' };
/** A readable label for a setting without one of its own: `kv-dtype` → `KV dtype`. */
function labelOf(key) {
  if (LABELS[key]) return LABELS[key];
  const words = key.split('-').map((w) => WORDS[w] || w);
  const first = words[0];
  words[0] = first === first.toLowerCase() ? first[0].toUpperCase() + first.slice(1) : first;
  return words.join(' ');
}
const FRAMEWORK_NAMES = { vllm: 'vLLM', 'hf-generate': 'Hugging Face generate' };

/** A file setting's text is sent as given; JSON cannot name a file on this machine. */
const FILE_LABELS = { 'hf-config': 'config.json', 'model-file': 'model.toml', 'deepspeed-config': 'ds_config.json', calibration: 'calibration.json' };

const state = {
  view: 'estimate',
  units: 'gib',
  source: 'model',
  table: [],
  byKey: {},
  presets: null,
  widgets: {},
  fields: {},
  last: { estimate: null, plan: null },
  seq: 0,
  controller: null,
  timer: 0,
  visitedPlan: false,
};

function defaultText(d) {
  if (d.default !== null && d.default !== undefined) return d.default;
  return '';
}

function widgetFor(d) {
  const id = 'f-' + d.key;
  if (d.key === 'model' && state.presets) {
    const sel = el('select', { id, name: d.key });
    sel.append(el('option', { value: '' }, '— choose a model —'));
    const families = new Map();
    for (const m of state.presets.models) {
      if (!families.has(m.family)) families.set(m.family, []);
      families.get(m.family).push(m);
    }
    for (const [family, models] of families) {
      const g = el('optgroup', { label: family });
      for (const m of models) g.append(el('option', { value: m.name }, `${m.name} · ${fmtCount(m.parameters)}`));
      sel.append(g);
    }
    return sel;
  }
  if (d.key === 'gpu' && state.presets) {
    const sel = el('select', { id, name: d.key });
    sel.append(el('option', { value: '' }, 'every preset (compare all)'));
    for (const g of state.presets.gpus) sel.append(el('option', { value: g.name, 'data-bytes': String(g.memory_bytes) }, g.name));
    return sel;
  }
  if (d.kind === 'file') {
    return el('textarea', { id, name: d.key, rows: 6, spellcheck: 'false', placeholder: `paste the ${FILE_LABELS[d.key] || 'file'} here` });
  }
  if (d.choices && d.choices.length) {
    const sel = el('select', { id, name: d.key });
    const def = defaultText(d);
    sel.append(el('option', { value: '' }, def ? `default (${def})` : 'default'));
    for (const c of d.choices) sel.append(el('option', { value: c }, c));
    return sel;
  }
  if (d.kind === 'switch') {
    const sel = el('select', { id, name: d.key });
    const def = defaultText(d);
    sel.append(el('option', { value: '' }, def ? `default (${def})` : 'default'));
    sel.append(el('option', { value: 'on' }, 'on'), el('option', { value: 'off' }, 'off'));
    return sel;
  }
  const numeric = ['count', 'integer', 'number'].includes(d.kind);
  return el('input', {
    id, name: d.key, type: 'text', spellcheck: 'false', inputmode: numeric ? 'decimal' : null,
    placeholder: defaultText(d) ? `default: ${defaultText(d)}` : (d.kind === 'size' ? 'e.g. 2GiB' : 'default'),
  });
}

function fieldFor(d) {
  const w = widgetFor(d);
  state.widgets[d.key] = w;
  const label = el('label', { for: w.id, title: `--${d.key}: ${d.help}` }, labelOf(d.key));
  const wide = d.kind === 'file' || d.key === 'model' || d.key === 'gpu';
  const f = el('div', { class: 'field' + (wide ? ' wide' : ''), 'data-key': d.key },
    label, w, el('div', { class: 'help', id: 'help-' + d.key }, el('code', {}, '--' + d.key), ' · ', d.help),
    el('p', { class: 'field-error', id: 'err-' + d.key, hidden: true }));
  w.setAttribute('aria-describedby', 'help-' + d.key);
  if (d.kind === 'file') {
    const picker = el('input', { type: 'file', 'aria-label': `load ${FILE_LABELS[d.key] || 'a file'}` });
    picker.addEventListener('change', async () => {
      const file = picker.files && picker.files[0];
      if (!file) return;
      w.value = await file.text();
      schedule();
    });
    f.insertBefore(el('div', { class: 'file-row' }, 'or load a file:', picker), f.querySelector('.help'));
  }
  state.fields[d.key] = f;
  return f;
}

function buildForm() {
  const form = $('#form');
  form.replaceChildren();
  const placed = new Set(MODEL_SOURCES.map(([k]) => k));
  for (const s of SECTIONS) for (const k of [...(s.main || []), ...(s.more || [])]) placed.add(k);
  for (const s of SECTIONS) {
    if (s.group) s.main = state.table.filter((d) => d.group === s.group && !placed.has(d.key)).map((d) => d.key);
    if (s.id === 'other') s.main = state.table.filter((d) => !placed.has(d.key) && !SECTIONS.some((x) => x.group === d.group)).map((d) => d.key);
    for (const k of s.main || []) placed.add(k);
  }
  for (const s of SECTIONS) {
    const fs = el('fieldset', { class: 'section' + (s.collapsed ? ' collapsible' : ''), 'data-section': s.id });
    const main = el('div', { class: 'grid2' });
    if (s.id === 'model') {
      const buttons = el('div', { class: 'source', role: 'group', 'aria-label': 'Model source' });
      for (const [key, title] of MODEL_SOURCES) {
        if (!state.byKey[key]) continue;
        buttons.append(el('button', { type: 'button', 'data-source': key, 'aria-pressed': 'false', onclick: () => { setSource(key); schedule(0); } }, title));
        main.append(fieldFor(state.byKey[key]));
      }
      main.prepend(el('div', { class: 'field wide' }, buttons));
    }
    for (const k of s.main || []) if (state.byKey[k]) main.append(fieldFor(state.byKey[k]));
    let more = null;
    const moreKeys = (s.more || []).filter((k) => state.byKey[k]);
    if (moreKeys.length) {
      const grid = el('div', { class: 'grid2' });
      for (const k of moreKeys) grid.append(fieldFor(state.byKey[k]));
      more = el('details', { 'data-more': s.id }, el('summary', {}, s.moreTitle || 'More settings', ' ', el('span', { class: 'count' })), grid);
    }
    if (s.collapsed) {
      if (!(s.main || []).length) continue;
      fs.append(el('details', { 'data-more': s.id }, el('summary', {}, s.title, ' ', el('span', { class: 'count' })), main));
    } else {
      fs.append(el('legend', {}, s.title), main);
      if (more) fs.append(more);
    }
    form.append(fs);
  }
  setSource(state.source);
}

function setSource(key) {
  state.source = key;
  for (const b of document.querySelectorAll('[data-source]')) b.setAttribute('aria-pressed', String(b.dataset.source === key));
  for (const [k] of MODEL_SOURCES) if (state.fields[k]) state.fields[k].hidden = k !== key;
}

/** The text a widget holds (`''`: not given, the library's default applies). */
function valueOf(key) {
  const w = state.widgets[key];
  if (!w) return '';
  const d = state.byKey[key];
  const v = d.kind === 'file' ? w.value : w.value.trim();
  return v.trim() === '' ? '' : v;
}

function setValue(key, text) {
  const w = state.widgets[key];
  if (!w) return;
  if (w.tagName === 'SELECT' && text !== '' && ![...w.options].some((o) => o.value === text)) {
    // Not one of the choices: keep it, and let the library say what is valid.
    w.append(el('option', { value: text }, text));
  }
  w.value = text;
}

/**
 * Which settings a view sends: those its entry point takes (the table says), less those the
 * plan search chooses itself (micro-batch, recomputation), which it would not use.
 */
const sends = (d, view) => d[view] && !(view === 'plan' && d.plan_searches) &&
  (!MODEL_SOURCES.some(([k]) => k === d.key) || d.key === state.source);

/** The scenario of a view, as the JSON object the API takes. */
function scenario(view) {
  const out = {};
  for (const d of state.table) {
    if (!sends(d, view)) continue;
    const v = valueOf(d.key);
    if (v !== '') out[d.key] = v;
  }
  return out;
}

function updateVisibility() {
  for (const d of state.table) {
    const f = state.fields[d.key];
    if (!f || MODEL_SOURCES.some(([k]) => k === d.key)) continue;
    f.hidden = !sends(d, state.view);
  }
  for (const fs of document.querySelectorAll('fieldset.section')) {
    const any = [...fs.querySelectorAll('.field[data-key]')].some((f) => !f.hidden);
    fs.hidden = !any;
  }
  for (const det of document.querySelectorAll('details[data-more]')) {
    const fields = [...det.querySelectorAll('.field[data-key]')];
    const set = fields.filter((f) => !f.hidden && valueOf(f.dataset.key) !== '').length;
    det.querySelector('.count').textContent = set ? `(${set} set)` : '';
    det.hidden = !fields.some((f) => !f.hidden);
  }
  // Serving settings matter for inference: open them when the phase is inference.
  const serving = $('details[data-more="serving"]');
  if (serving && valueOf('phase') === 'inference' && !serving.dataset.touched) serving.open = true;
}

// ---------------------------------------------------------------------------------------------
// URL: the inputs as a query string, restored on load

function toQuery() {
  const p = new URLSearchParams();
  if (state.view !== 'estimate') p.set('view', state.view);
  if (state.units !== 'gib') p.set('units', state.units);
  for (const d of state.table) {
    if (MODEL_SOURCES.some(([k]) => k === d.key) && d.key !== state.source) continue;
    const v = valueOf(d.key);
    if (v !== '') p.set(d.key, v);
  }
  return p.toString();
}

function restore(query) {
  const p = new URLSearchParams(query);
  state.view = p.get('view') === 'plan' ? 'plan' : 'estimate';
  state.units = p.get('units') === 'gb' ? 'gb' : 'gib';
  let any = false;
  for (const [k, v] of p) {
    if (!state.byKey[k]) continue;
    any = true;
    setValue(k, v);
    if (MODEL_SOURCES.some(([s]) => s === k)) setSource(k);
  }
  if (!any) {
    // A first visit: an example to start from, as if typed.
    setValue('model', 'llama-2-7b');
    setValue('seq', '4096');
    setValue('gpu', 'h100-sxm');
    setSource('model');
  }
  if (state.view === 'plan') state.visitedPlan = true;
  // Open the collapsed sections that hold given settings.
  for (const det of document.querySelectorAll('details[data-more]')) {
    if ([...det.querySelectorAll('.field[data-key]')].some((f) => valueOf(f.dataset.key) !== '')) det.open = true;
  }
  $('#units').value = state.units;
}

// ---------------------------------------------------------------------------------------------
// requests

function schedule(delay = 250) {
  clearTimeout(state.timer);
  state.timer = setTimeout(run, delay);
}

function setStatus(kind, text) {
  $('#results').dataset.state = kind;
  $('#status').textContent = text;
}

async function run() {
  const view = state.view;
  const body = scenario(view);
  const query = toQuery();
  history.replaceState(null, '', query ? '?' + query : location.pathname);
  updateVisibility();
  const id = ++state.seq;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  setStatus('busy', view === 'plan' ? 'Searching plans…' : 'Estimating…');
  let res, text;
  try {
    res = await fetch('/api/' + view, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal,
    });
    text = await res.text();
  } catch (e) {
    if (e.name === 'AbortError') return;
    showError({ error: 'cannot reach the memplan server: ' + e.message, hint: 'is `memplan serve` still running?' }, view);
    return;
  }
  if (id !== state.seq) return;
  let data;
  try {
    data = parseExact(text);
  } catch (e) {
    showError({ error: `the server answered ${res.status} with something that is not JSON`, hint: null }, view);
    return;
  }
  $('#results').dataset.request = JSON.stringify(body);
  $('#results').dataset.view = view;
  if (!res.ok) {
    showError(data, view);
    return;
  }
  clearErrors();
  state.last[view] = { text, data, body };
  render();
  setStatus('ready', view === 'plan'
    ? `${data.evaluated} plans evaluated, ${data.fitting} fit`
    : 'Up to date · the same numbers as memplan estimate --format json');
  updateSummary();
}

function clearErrors() {
  $('#error-box').hidden = true;
  for (const f of document.querySelectorAll('.field[data-invalid]')) {
    f.removeAttribute('data-invalid');
    const w = state.widgets[f.dataset.key];
    if (w) w.removeAttribute('aria-invalid');
    const p = f.querySelector('.field-error');
    p.hidden = true;
    p.replaceChildren();
  }
}

/** The input an error message is about: the first `--key` it names that the view shows. */
function fieldOfError(message, view) {
  const visible = (k) => state.byKey[k] && sends(state.byKey[k], view);
  for (const m of message.matchAll(/--([a-z0-9-]+)/g)) if (visible(m[1])) return m[1];
  for (const [key, label] of Object.entries(FILE_LABELS)) if (message.startsWith(label) && visible(key)) return key;
  if (/model preset/.test(message) && visible('model')) return 'model';
  if (/gpu preset/.test(message)) return valueOf('gpu') && visible('gpu') ? 'gpu' : visible('gpus') ? 'gpus' : null;
  if (/^setting key|setting key/.test(message)) return null;
  return null;
}

function showError(err, view) {
  clearErrors();
  const message = String(err.error || 'unknown error');
  const hint = err.hint ? String(err.hint) : '';
  const key = fieldOfError(message, view);
  const box = $('#error-box');
  box.replaceChildren(el('strong', {}, 'error: '), message, hint ? el('span', { class: 'hint' }, 'hint: ' + hint) : null);
  if (key) {
    const f = state.fields[key];
    f.setAttribute('data-invalid', '');
    state.widgets[key].setAttribute('aria-invalid', 'true');
    const p = f.querySelector('.field-error');
    p.replaceChildren(message, hint ? el('span', { class: 'hint' }, 'hint: ' + hint) : null);
    p.hidden = false;
    const det = f.closest('details');
    if (det) det.open = true;
    box.append(el('span', { class: 'hint' }, `The input “${labelOf(key)}” is marked.`));
  }
  box.hidden = false;
  setStatus('error', 'Fix the input to update the results (showing the last good result)');
}

// ---------------------------------------------------------------------------------------------
// results: estimate

// The chart's colours and order follow `memplan chart breakdown` (Okabe–Ito).
const TERMS = [
  ['weights', '#0072B2', (d) => d.peak.alive.weights],
  ['gradients', '#56B4E9', (d) => d.peak.alive.gradients],
  ['optimizer states', '#009E73', (d) => d.peak.alive.optimizer_states],
  ['activations (layers)', '#E69F00', (d) => d.peak.alive.activations],
  ['other activations', '#CC79A7', (d) => d.peak.alive.other_activations],
  ['KV cache', '#D55E00', (d) => d.peak.alive.kv_cache],
  ['temporaries', '#F0E442', (d) => d.peak.alive.temporaries],
  ['runtime overheads', '#999999', (d) => d.per_gpu.runtime_overhead_bytes],
];
const DARK_TEXT = new Set(['#56B4E9', '#F0E442', '#E69F00', '#999999', '#CC79A7']);

function niceStep(max) {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** One horizontal stacked bar: what is alive at the peak, then the runtime overheads. */
function stackedBar(d, lines) {
  const u = UNITS[state.units];
  const total = Number(d.per_gpu.total_bytes);
  const maxBytes = Math.max(total, ...lines.map((l) => Number(l.bytes))) || 1;
  const step = niceStep(maxBytes / u.div) * u.div;
  const axisMax = Math.ceil((maxBytes * 1.02) / step) * step;
  // Drawn at the width it is shown, so its text keeps its size on a phone.
  const W = Math.round(Math.min(1000, Math.max(320, $('#estimate-view').clientWidth - 34)));
  const L = 8, R = 14, top = 26, barH = 46;
  const H = top + barH + 30 + lines.length * 15;
  const x = (b) => L + (Number(b) / axisMax) * (W - L - R);
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Memory per GPU: ${fmtBytes(d.per_gpu.total_bytes)} in total` });
  const every = W < 520 ? 2 : 1;
  for (let t = 0, i = 0; t <= axisMax + 1; t += step, i += 1) {
    svg.append(el('line', { x1: x(t), x2: x(t), y1: top - 4, y2: top + barH + 6, stroke: '#e4e7eb' }));
    if (i % every) continue;
    const v = t / u.div;
    const last = t + step > axisMax + 1;
    svg.append(el('text', { x: x(t), y: top + barH + 20, 'text-anchor': t === 0 ? 'start' : last ? 'end' : 'middle', class: 'axis' },
      `${Number.isInteger(v) ? v : fixed(v, 1)}${t === 0 ? '' : ' ' + u.label}`));
  }
  let at = 0;
  for (const [name, color, get] of TERMS) {
    const b = Number(get(d));
    if (!b) continue;
    const x0 = x(at), x1 = x(at + b);
    const g = el('g', {}, el('title', {}, `${name}: ${fmtBytes(get(d))}`));
    g.append(el('rect', { x: x0, y: top, width: Math.max(x1 - x0, 0.5), height: barH, fill: color }));
    if (x1 - x0 > 64) {
      g.append(el('text', { x: (x0 + x1) / 2, y: top + barH / 2 + 4, 'text-anchor': 'middle', 'font-size': 12, fill: DARK_TEXT.has(color) ? '#1f2328' : '#ffffff' }, fmtBytes(get(d))));
    }
    svg.append(g);
    at += b;
  }
  svg.append(el('text', { x: Math.min(x(total), W - R), y: top - 8, 'text-anchor': x(total) > W - 140 ? 'end' : 'start', 'font-size': 12, 'font-weight': 700 },
    `total ${fmtBytes(d.per_gpu.total_bytes)}`));
  lines.forEach((l, i) => {
    const lx = x(l.bytes);
    svg.append(el('line', { x1: lx, x2: lx, y1: top - 6, y2: top + barH + 6, stroke: '#1f2328', 'stroke-width': 1.5, 'stroke-dasharray': '4 3' }));
    const anchor = lx > W - 130 ? 'end' : lx < 130 ? 'start' : 'middle';
    svg.append(el('text', { x: lx, y: top + barH + 38 + i * 15, 'text-anchor': anchor, 'font-size': 12, 'font-weight': 600 },
      `${l.name} usable: ${fmtBytes(l.bytes)}`));
  });
  return svg;
}

function legend(d) {
  const total = Number(d.per_gpu.total_bytes) || 1;
  const out = el('div', { class: 'legend' });
  for (const [name, color, get] of TERMS) {
    const b = get(d);
    if (!Number(b)) continue;
    const sw = el('span', { class: 'swatch' });
    sw.style.background = color;
    out.append(el('span', {}, sw, `${name} `, el('b', {}, fmtBytes(b)), ` (${fixed((100 * Number(b)) / total, 1)}%)`));
  }
  return out;
}

function card(label, big, sub, cls = '', attrs = {}) {
  return el('div', { class: 'card ' + cls, ...attrs }, el('div', { class: 'label' }, label), el('div', { class: 'big' }, big), sub ? el('div', { class: 'sub' }, sub) : null);
}

function panel(title, note, ...body) {
  return el('section', { class: 'panel' }, el('h2', {}, title), note ? el('p', { class: 'note' }, note) : null, ...body);
}

function renderEstimate(last) {
  const d = last.data;
  const p = d.per_gpu;
  const chosen = last.body.gpu ? d.fits : [];
  const view = $('#estimate-view');
  view.replaceChildren();

  // Summary cards.
  const cards = el('div', { class: 'cards' });
  cards.append(card('Total per GPU (reserved)', el('span', { id: 'total', 'data-bytes': String(p.total_bytes) }, fmtBytes(p.total_bytes)),
    `peak allocated ${fmtBytes(p.peak_allocated_bytes)} + runtime overheads ${fmtBytes(p.runtime_overhead_bytes)}`));
  const serving = d.serving;
  if (chosen.length === 1) {
    const f = chosen[0];
    const head = f.headroom_bytes;
    let sub = isNeg(head) ? `short by ${fmtBytes(neg(head))}` : `headroom ${fmtBytes(head)}`;
    if (f.max_concurrent_sequences !== undefined) sub += ` · up to ${f.max_concurrent_sequences} sequences of ${serving.context_tokens} tokens`;
    cards.append(card(`On ${f.gpu} (${fmtBytes(f.usable_bytes)} usable)`, f.fits ? 'fits' : 'does not fit', sub, f.fits ? 'ok' : 'bad', { id: 'fit-card' }));
  } else {
    const fitting = d.fits.filter((f) => f.fits);
    const smallest = [...fitting].sort((a, b) => Number(a.usable_bytes) - Number(b.usable_bytes))[0];
    const label = chosen.length ? 'Fits on the chosen GPUs' : 'Fits on the GPU presets';
    cards.append(card(label, `${fitting.length} of ${d.fits.length}`,
      smallest ? `smallest that fits: ${smallest.gpu} (${fmtBytes(smallest.usable_bytes)} usable)` : 'none of them fits',
      fitting.length ? 'ok' : 'bad', { id: 'fit-card' }));
  }
  const m = d.model;
  cards.append(card('Model', `${fmtCount(m.parameters)}`,
    `${m.name} · ${m.architecture}${m.trainable_parameters !== m.parameters && d.setup.phase === 'train' ? ` · ${fmtCount(m.trainable_parameters)} trainable` : ''}${m.derived_shape ? ' · shape derived from the count' : ''}`));
  view.append(cards);

  // Chart.
  const lines = chosen.slice(0, 3).map((f) => ({ name: f.gpu, bytes: f.usable_bytes }));
  const worst = d.stages.length > 1 ? `, stage ${d.worst_stage} (the worst)` : '';
  view.append(panel('Where the memory goes', `Per GPU${worst}: tensors alive at the peak (${d.peak.description}), plus the CUDA context, cuBLAS workspace and fragmentation margin.`,
    stackedBar(d, lines), legend(d)));

  // Breakdown table, the CLI's rows.
  const training = d.setup.phase === 'train';
  const rows = [['weights', p.weights_bytes, `${fmtCount(p.rank_parameters)} params on this rank`]];
  if (training) {
    rows.push(['gradients', p.gradients_bytes, '']);
    rows.push(['optimizer states', p.optimizer_states_bytes, d.setup.optimizer]);
    rows.push(['activations (layer stacks)', p.activations_bytes, 'saved for backward']);
  } else {
    rows.push(['activations (largest layer)', p.activations_bytes, 'working set']);
  }
  rows.push(['other activations', p.other_activations_bytes, 'embeddings, logits, loss, inputs']);
  if (!training) rows.push(['KV cache', p.kv_cache_bytes, '']);
  const t = el('table', { id: 'breakdown' }, el('thead', {}, el('tr', {}, el('th', {}, 'term'), el('th', { class: 'num' }, `per GPU (${UNITS[state.units].label})`), el('th', { class: 'num' }, 'bytes'), el('th', {}, 'note'))));
  const tb = el('tbody');
  const row = (name, b, note, cls = '', key = '') => tb.append(el('tr', { class: cls, 'data-term': key || name }, el('td', {}, name), bytesCell(b), el('td', { class: 'num' }, String(b)), el('td', { class: 'note' }, note)));
  for (const [n, b, note] of rows) row(n, b, note);
  row('peak allocated (live tensors)', p.peak_allocated_bytes, `at the ${d.peak.description}`, 'sum', 'peak');
  row('CUDA context', d.overheads.cuda_context_bytes, 'runtime overhead', 'sub');
  row('cuBLAS workspace', d.overheads.workspace_bytes, 'runtime overhead', 'sub');
  if (d.overheads.nccl_bytes) row('NCCL buffers', d.overheads.nccl_bytes, 'NCCL_BUFFSIZE × channels × peers per communicator', 'sub');
  const frag = Number(p.peak_allocated_bytes) ? fixed((Number(d.overheads.fragmentation_bytes) / Number(p.peak_allocated_bytes)) * 100, 0) : '0';
  row('fragmentation margin', d.overheads.fragmentation_bytes, `${frag}% of the peak`, 'sub');
  row('total (reserved)', p.total_bytes, 'peak + overheads', 'sum', 'total');
  t.append(tb);
  const extra = [];
  if (serving) extra.push(`Serving: each sequence of ${serving.context_tokens} tokens keeps ${fmtBytes(serving.kv_bytes_per_sequence)} of KV cache; weights, working set and overheads take ${fmtBytes(serving.base_bytes)}.`);
  if (!isZero(p.host_offload_bytes)) extra.push(`Host memory per GPU for offloaded states: ${fmtBytes(p.host_offload_bytes)}.`);
  if (d.deepspeed_zero3_estimator) {
    const ds = d.deepspeed_zero3_estimator;
    extra.push(`DeepSpeed's own ZeRO-3 estimator: ${fmtBytes(ds.no_offload)} (no offload), ${fmtBytes(ds.offload_optimizer)} (offload optimizer), ${fmtBytes(ds.offload_optimizer_and_params)} (offload both) — model states only.`);
  }
  view.append(panel('Per-GPU breakdown', `The worst rank${worst}. The terms above the peak are each term's own maximum; the peak is what is alive at once.`,
    el('div', { class: 'scroll' }, t), ...extra.map((x) => el('p', { class: 'note' }, x))));

  // Fits per GPU: each GPU's usable memory against the total with that GPU's runtime.
  const ft = el('table', { id: 'fits' });
  const head = el('tr', {}, el('th', {}, 'GPU'), el('th', { class: 'num', title: 'what a process can use (PyTorch total_memory where the preset states it)' }, 'usable'),
    el('th', { class: 'num', title: 'the peak plus this GPU\'s runtime overheads' }, 'total on it'), el('th', {}, 'fits'), el('th', { class: 'num' }, 'headroom'));
  if (serving) head.append(el('th', { class: 'num' }, `max sequences × ${serving.context_tokens} tokens`));
  head.append(el('th', {}, 'use'));
  ft.append(el('thead', {}, head));
  const fb = el('tbody');
  for (const f of d.fits) {
    const over = !f.fits;
    const share = (100 * Number(f.total_bytes)) / Number(f.usable_bytes);
    const meter = el('div', { class: 'meter' + (over ? ' over' : ''), title: `${fixed(share, 1)}% of the usable memory of ${f.gpu}` }, el('span'));
    meter.firstChild.style.width = `${Math.min(100, share)}%`;
    const tr = el('tr', { class: `fits-${f.fits ? 'yes' : 'no'}${chosen.includes(f) && chosen.length < d.fits.length ? ' chosen' : ''}`, 'data-gpu': f.gpu },
      el('td', { title: `${fmtBytes(f.memory_bytes)} on the datasheet` }, f.gpu), bytesCell(f.usable_bytes), bytesCell(f.total_bytes), el('td', { class: 'fit' }, f.fits ? 'yes' : 'no'),
      el('td', { class: 'num', 'data-bytes': String(f.headroom_bytes) }, fmtBytes(f.headroom_bytes)));
    if (serving) tr.append(el('td', { class: 'num' }, f.max_concurrent_sequences === undefined ? '-' : String(f.max_concurrent_sequences)));
    tr.append(el('td', {}, meter));
    fb.append(tr);
  }
  ft.append(fb);
  view.append(panel('Fits and headroom per GPU', chosen.length ? 'The total on a GPU counts its own CUDA context, workspace and NCCL buffers.'
    : 'Every GPU preset; choose one under “GPUs and cluster” to check only that one. The total on a GPU counts its own CUDA context, workspace and NCCL buffers.',
  el('div', { class: 'scroll' }, ft)));

  // The serving framework's start-up budget (vLLM: what its profile run leaves for the KV cache).
  const sf = d.serving_framework;
  if (sf && sf.per_gpu && sf.per_gpu.length) {
    const blocks = sf.per_gpu.slice(0, chosen.length ? 3 : 1).map(([gpu, b]) => {
      const t = el('table', { class: 'budget' });
      const tb = el('tbody');
      const line = (term, bytes, why, cls = '') => tb.append(el('tr', { class: cls }, el('td', {}, term), bytesCell(bytes), el('td', { class: 'note' }, why)));
      line(`usable: ${b.gpu_memory_utilization} × ${fmtBytes(b.total_memory)}`, b.usable, `gpu_memory_utilization × the GPU's total memory`, 'sum');
      for (const l of b.lines) line('− ' + l.term, l.bytes, l.why);
      line('= KV cache', b.kv_budget, `${b.num_gpu_blocks} blocks of ${b.block_size} tokens (${b.kv_tokens} tokens): up to ${fixed(b.max_concurrency, 2)} requests of ${b.max_model_len} tokens`, 'sum');
      t.append(tb);
      const name = FRAMEWORK_NAMES[sf.framework] || sf.framework;
      return el('div', {}, el('h3', { class: 'budget-title' }, `${name} ${b.version} (${b.engine} engine) on ${gpu}`), el('div', { class: 'scroll' }, t));
    });
    view.append(panel(`${FRAMEWORK_NAMES[sf.framework] || sf.framework} start-up memory budget`, 'What the engine reserves at start-up, line by line, as its own profiling computes it.', ...blocks));
  }

  // Pipeline stages.
  if (d.stages.length > 1) {
    const st = el('table', { id: 'stages' });
    st.append(el('thead', {}, el('tr', {}, ...['stage', 'layers', 'in flight', 'weights', 'grads + optimizer', 'activations', 'peak', 'total'].map((h, i) => el('th', { class: i ? 'num' : '' }, h)))));
    const sb = el('tbody');
    for (const s of d.stages) {
      sb.append(el('tr', { class: s.stage === d.worst_stage ? 'chosen' : '' }, el('td', {}, String(s.stage)), el('td', { class: 'num' }, String(s.layers)),
        el('td', { class: 'num' }, fixed(s.microbatches_in_flight, 2)), bytesCell(s.weights_bytes),
        bytesCell(addBytes(s.gradients_bytes, s.optimizer_states_bytes)), bytesCell(addBytes(s.activations_bytes, s.other_activations_bytes)),
        bytesCell(s.peak_allocated_bytes), bytesCell(s.total_bytes)));
    }
    st.append(sb);
    view.append(panel('Pipeline stages', `Worst: stage ${d.worst_stage} (highlighted).`, el('div', { class: 'scroll' }, st)));
  }

  const fw = d.framework;
  const fwList = fw && fw.settings && fw.settings.length
    ? [el('p', { class: 'note' }, `Framework: ${fw.name} (${fw.package} ${fw.version}). Its choices, with their source:`),
      el('ul', { class: 'assumptions' }, fw.settings.map((x) => el('li', { title: x.source }, el('b', {}, `${x.setting} = ${x.value}`), `: ${x.why}`)))]
    : [];
  view.append(panel('What was assumed', null, el('ul', { class: 'assumptions' }, d.assumptions.map((a) => el('li', {}, a))), ...fwList));
}

// ---------------------------------------------------------------------------------------------
// results: plan search

// The precision recipe of the plans: one for all, or each framework's own (the report's `recipes`).
function recipeLine(d) {
  const rs = d.recipes;
  if (rs.length === 1) return `Precision ${rs[0].precision}, optimizer ${rs[0].optimizer}`;
  return `Each framework's own recipe: ${rs.map((r) => `${r.precision} + ${r.optimizer} for ${r.frameworks.join(', ')}`).join('; ')}`;
}

/** The settings that reproduce a ranked plan in the estimate view. */
function planSettings(d, row) {
  const p = row.plan;
  const s = {
    dp: p.dp, tp: p.tp, pp: p.pp, cp: p.cp, ep: p.ep, sp: p.sp ? 'on' : 'off', zero: p.zero,
    fsdp: p.fsdp === null ? 'none' : p.fsdp, 'distributed-optimizer': p.distributed_optimizer ? 'on' : 'off',
    offload: p.offload, schedule: p.schedule, vpp: p.vpp, microbatches: p.microbatches, 'gpus-per-node': p.gpus_per_node,
    batch: row.micro_batch, recompute: row.recompute, gpu: d.gpu,
    // The plan is sized with the tensors its framework keeps: estimate it with that framework.
    framework: row.framework,
  };
  if (p.first_stage_layers != null) s['first-stage-layers'] = p.first_stage_layers;
  if (p.last_stage_layers != null) s['last-stage-layers'] = p.last_stage_layers;
  return s;
}

function openInEstimate(d, row) {
  for (const [k, v] of Object.entries(planSettings(d, row))) setValue(k, String(v));
  // The cluster's size is the plan's; the global batch and search bounds stay for the search.
  setValue('gpus', '');
  setValue('global-batch', '');
  switchView('estimate');
}

function renderPlan(last) {
  const d = last.data;
  const view = $('#plan-view');
  view.replaceChildren();
  const best = d.plans[0];
  const cards = el('div', { class: 'cards' });
  if (best) {
    cards.append(card('Best plan', best.description, `micro-batch ${best.micro_batch}, recompute ${best.recompute}`, 'ok text', { id: 'best-plan' }));
    cards.append(card('Step time', `${fixed(best.time.total_s, 3)} s`, `${fmtCount(Math.round(best.time.tokens_per_s))} tokens/s · MFU ${fixed(best.time.mfu * 100, 1)}%`));
    cards.append(card('Memory (worst rank)', el('span', { 'data-bytes': String(best.worst_total_bytes) }, fmtBytes(best.worst_total_bytes)), `of ${fmtBytes(d.usable_bytes_per_gpu)} usable on ${d.gpu}`));
  } else {
    cards.append(card('No plan fits', `${d.gpus} × ${d.gpu}`, d.suggestion ? `smallest change that would fit: ${d.suggestion}` : 'no offloading, shorter sequence or up to 16× more GPUs would fit either', 'bad', { id: 'best-plan' }));
  }
  view.append(cards);
  const lines = [
    `${d.model} (${fmtCount(d.parameters)} parameters) on ${d.gpus} × ${d.gpu} (${d.gpus_per_node} per node), global batch ${d.global_batch_sequences} sequences × ${d.setup.seq} tokens.`,
    `${recipeLine(d)}, attention ${d.setup.attention}; matmul efficiency up to ${fixed(d.efficiency * 100, 0)}% of the dense peak, ${d.overlap === null || d.overlap === undefined ? 'data-parallel communication overlapped as each framework does' : `${fixed(d.overlap * 100, 0)}% of data-parallel communication overlapped`}. Frameworks searched: ${d.frameworks.join(', ')}.`,
    `Fits when the worst rank's total ≤ ${fmtBytes(d.usable_bytes_per_gpu)} (${d.headroom}). ${d.evaluated} plans evaluated, ${d.fitting} fit.`,
    'The search chooses the micro-batch and the recomputation policy itself.',
  ];
  if (d.calibration_note) lines.push(`Warning: ${d.calibration_note}`);
  if (d.plans.length) {
    const t = el('table', { id: 'plans' });
    const toTrain = d.plans.some((r) => r.days_to_train !== null);
    const heads = [['#', 'num'], ['framework', ''], ['plan', ''], ['memory (worst rank)', 'num'], ['step (s)', 'num'], ['tokens/s', 'num'], ['MFU', 'num']]
      .concat(toTrain ? [['to train', '']] : [], [['', '']]);
    t.append(el('thead', {}, el('tr', {}, ...heads.map(([h, c]) => el('th', { class: c }, h)))));
    const tb = el('tbody');
    for (const r of d.plans) {
      const tm = r.time;
      const comm = tm.tp_comm_s + tm.pp_comm_s + tm.dp_comm_s + tm.moe_comm_s + tm.cp_comm_s + tm.offload_s;
      const train = r.days_to_train !== null && r.cost_usd !== null ? `${fixed(r.days_to_train, 1)} days, $${fmtCount(Math.round(r.cost_usd))}`
        : r.days_to_train !== null ? `${fixed(r.days_to_train, 1)} days` : '-';
      const meter = el('div', { class: 'meter', title: `${fixed((100 * Number(r.worst_total_bytes)) / Number(d.usable_bytes_per_gpu), 1)}% of the usable memory` }, el('span'));
      meter.firstChild.style.width = `${Math.min(100, (100 * Number(r.worst_total_bytes)) / Number(d.usable_bytes_per_gpu))}%`;
      tb.append(el('tr', { class: 'plan-row', 'data-rank': r.rank },
        el('td', { class: 'num rank' }, String(r.rank)),
        el('td', { class: 'framework' }, r.also_runs_on.length ? `${r.framework} (also ${r.also_runs_on.join(', ')})` : r.framework),
        el('td', { class: 'plan' }, el('div', { class: 'desc' }, r.description), el('div', { class: 'detail' }, `micro-batch ${r.micro_batch} · recompute ${r.recompute}`)),
        el('td', { class: 'num memory', 'data-bytes': String(r.worst_total_bytes) }, `${fmtBytes(r.worst_total_bytes)} (stage ${r.worst_stage})`, meter),
        el('td', { class: 'num step', title: `compute ${fixed(tm.compute_s, 3)} s, bubble ${fixed(tm.bubble_s, 3)} s, communication ${fixed(comm, 3)} s` }, fixed(tm.total_s, 3)),
        el('td', { class: 'num' }, fmtCount(Math.round(tm.tokens_per_s))),
        el('td', { class: 'num', title: `hardware FLOPs utilisation (with recomputation) ${fixed(tm.hfu * 100, 1)}%` }, `${fixed(tm.mfu * 100, 1)}%`),
        toTrain ? el('td', {}, train) : null,
        el('td', {}, el('button', { type: 'button', class: 'btn', title: 'Check this plan term by term in the estimate view', onclick: () => openInEstimate(d, r) }, 'Estimate'))));
    }
    t.append(tb);
    view.append(panel('Ranked plans', lines.join(' '), el('div', { class: 'scroll' }, t)));
  } else {
    view.append(panel('Ranked plans', lines.join(' '), el('p', { class: 'empty' }, 'No plan fits this cluster.')));
  }
  if (d.rejections.length) {
    const t = el('table', { id: 'rejections' }, el('thead', {}, el('tr', {}, el('th', {}, 'rejected family (closest miss)'), el('th', { class: 'num' }, 'over by'), el('th', {}, 'reason'))));
    const tb = el('tbody');
    for (const r of d.rejections.slice(0, 12)) tb.append(el('tr', {}, el('td', {}, r.family), bytesCell(r.over_bytes), el('td', { class: 'note' }, r.reason)));
    t.append(tb);
    view.append(panel('Why other plan families do not fit', null, el('div', { class: 'scroll' }, t)));
  }
}

function render() {
  const last = state.last[state.view];
  $('#estimate-view').hidden = state.view !== 'estimate';
  $('#plan-view').hidden = state.view !== 'plan';
  if (!last) return;
  if (state.view === 'estimate') renderEstimate(last); else renderPlan(last);
}

/** The bottom bar on narrow screens: the answer while the inputs above are being edited. */
function updateSummary() {
  const bar = $('#summary');
  const last = state.last[state.view];
  if (!bar || !last) return;
  const d = last.data;
  if (state.view === 'plan') {
    bar.textContent = d.plans.length ? `Best: ${d.plans[0].description} · ${fixed(d.plans[0].time.total_s, 3)} s/step` : 'No plan fits';
  } else {
    const chosen = last.body.gpu && d.fits.length === 1 ? d.fits[0] : null;
    bar.textContent = `${fmtBytes(d.per_gpu.total_bytes)} per GPU` + (chosen ? ` · ${chosen.fits ? 'fits' : 'does not fit'} ${chosen.gpu}` : '');
    bar.className = chosen ? (chosen.fits ? 'ok' : 'bad') : '';
  }
}

// ---------------------------------------------------------------------------------------------
// views, units, sharing, download

function switchView(view) {
  state.view = view;
  for (const b of document.querySelectorAll('[role="tab"]')) b.setAttribute('aria-selected', String(b.dataset.view === view));
  if (view === 'plan' && !state.visitedPlan) {
    state.visitedPlan = true;
    // The search needs a cluster: start from one node of the chosen GPU, as if typed.
    if (!valueOf('gpus')) setValue('gpus', '8');
  }
  updateVisibility();
  render();
  updateSummary();
  schedule(0);
}

function download() {
  const last = state.last[state.view];
  if (!last) return;
  // The server's text as is: byte for byte what the CLI prints with --format json.
  const blob = new Blob([last.text], { type: 'application/json' });
  const a = el('a', { href: URL.createObjectURL(blob), download: `memplan-${state.view}-${(last.data.model && last.data.model.name) || last.data.model || 'scenario'}.json` });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

async function copyLink() {
  const button = $('#copy-link');
  try {
    await navigator.clipboard.writeText(location.href);
    button.textContent = 'Link copied';
  } catch (e) {
    window.prompt('Copy this link:', location.href);
  }
  setTimeout(() => { button.textContent = 'Copy link'; }, 1500);
}

async function start() {
  try {
    const [settings, presets] = await Promise.all([
      fetch('/api/settings').then((r) => r.text()).then(parseExact),
      fetch('/api/presets').then((r) => r.text()).then(parseExact),
    ]);
    state.table = settings;
    state.byKey = Object.fromEntries(settings.map((d) => [d.key, d]));
    state.presets = presets;
  } catch (e) {
    $('#loading').textContent = 'Could not load the settings from the server: ' + e.message;
    setStatus('error', 'The server did not answer');
    return;
  }
  buildForm();
  restore(location.search);
  for (const b of document.querySelectorAll('[role="tab"]')) b.addEventListener('click', () => switchView(b.dataset.view));
  $('#form').addEventListener('input', () => schedule());
  $('#form').addEventListener('change', () => schedule());
  $('#form').addEventListener('submit', (e) => { e.preventDefault(); schedule(0); });
  const serving = $('details[data-more="serving"]');
  if (serving) serving.querySelector('summary').addEventListener('click', () => { serving.dataset.touched = '1'; });
  $('#units').addEventListener('change', () => {
    state.units = $('#units').value;
    history.replaceState(null, '', '?' + toQuery());
    render();
    updateSummary();
  });
  let width = window.innerWidth;
  window.addEventListener('resize', () => {
    if (window.innerWidth === width) return;
    width = window.innerWidth;
    clearTimeout(state.resize);
    state.resize = setTimeout(render, 150);
  });
  $('#download').addEventListener('click', download);
  $('#copy-link').addEventListener('click', copyLink);
  switchView(state.view);
}

// For the browser test and the console: the last answers, as the server sent them.
window.memplan = { state, fixed, fmtBytes };

start();
