// Manager pages: a city's market days, and one market day — the applications
// to review, the pitch plan where a tap assigns a pitch, opening, closing
// and cancelling the day.
//
// Hooks:
//   #days li[data-market-day-id][data-status]   market days of #/manage/<city>
//   #day[data-market-day-id][data-status]       the day on #/manage/day/<id>
//   #review li[data-application-id]             data-status, data-pitch, data-selected;
//                                               buttons [data-action="select"|"accept"|
//                                               "waitlist"|"reject"], form[data-form="reject"]
//   #pitch-plan g.pitch[data-pitch]             role=button; data-state free | taken | offered,
//                                               data-application-id when held, aria-pressed
//   [data-action="open-day"|"close-day"], form[data-form="cancel"] (textarea name="reason")

import {
  h, svg, t, tn, tEnum, state, formatDate, formatTime, formatDateTime, addDays, collator, notify, errorText, AppError,
} from './core.js';
import { api, allPages, keyFor, settleKey, managesCity } from './api.js';
import { field, formError, busy, showErrors, clearErrors } from './forms.js';

// ---------- shared ----------

async function run(scope, path, body, { ok, form, button } = {}) {
  const key = keyFor(scope, body ?? null);
  if (button) button.disabled = true;
  if (form) { clearErrors(form); busy(form, true); }
  try {
    const out = await api('POST', path, { body, key });
    settleKey(scope);
    if (ok) notify(ok(out));
    return out;
  } catch (err) {
    settleKey(scope, err);
    if (form) showErrors(form, err);
    else notify(errorText(err), 'error');
    return null;
  } finally {
    if (button) button.disabled = false;
    if (form) busy(form, false);
  }
}

function cityOf(slug) {
  return state.cities.find((c) => c.slug === slug);
}

// ---------- a city's market days ----------

export const cityPage = {
  name: 'manage-city',
  access: 'manager',
  async load(ctx) {
    const slug = ctx.params.city;
    const range = await api('GET', `cities/${encodeURIComponent(slug)}/market-days`, {
      signal: ctx.signal, auth: false, query: { to: ctx.state.to },
    });
    return { slug, range };
  },
  render(ctx, { slug, range }) {
    const city = cityOf(slug);
    const tz = city?.timezone;
    const items = range.items ?? [];
    const byDate = new Map();
    for (const d of items) {
      if (!byDate.has(d.date)) byDate.set(d.date, []);
      byDate.get(d.date).push(d);
    }
    return [
      h('h1', { tabindex: '-1' }, t('manage.heading', { city: city?.name ?? slug })),
      managesCity(slug) ? null : h('p', { class: 'warn' }, t('manage.not_yours')),
      items.length
        ? h('div', { id: 'days' }, [...byDate].map(([date, days]) => h('section', { class: 'day-group', 'aria-label': formatDate(date) },
          h('h2', {}, formatDate(date)),
          h('ul', { class: 'cards' }, days.map((d) => h('li', { class: `card status-${d.status}`, dataset: { marketDayId: d.id, status: d.status, date: d.date } },
            h('h3', { class: 'card-title' },
              h('a', { href: `#/manage/day/${encodeURIComponent(d.id)}` }, d.market?.name ?? '')),
            h('p', {}, h('span', { class: `badge badge-${d.status}` }, tEnum('market_day.status', d.status)), ' ',
              t('market.hours_range', { start: formatTime(d.starts_at, tz), end: formatTime(d.ends_at, tz) })),
            h('p', { class: 'muted' }, d.place?.name ?? '', ' · ',
              tn('manage.stall_count', d.stall_count ?? (d.stalls ?? []).length))))))))
        : h('p', { class: 'empty' }, t('manage.no_days')),
      h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'later' }, onclick: () => {
        ctx.state.to = addDays(range.to, 7);
        ctx.reload();
      } }, t('manage.later_days')),
    ];
  },
};

// ---------- one market day ----------

// selection survives reloads of the same day: {kind: 'app' | 'stall', id}.
const selections = new Map();

const REVIEW_GROUPS = ['pending', 'waitlisted', 'offered', 'accepted', 'done'];

function groupLabel(k) {
  switch (k) {
    case 'pending': return t('review.group_pending');
    case 'waitlisted': return t('review.group_waitlisted');
    case 'offered': return t('review.group_offered');
    case 'accepted': return t('review.group_accepted');
    default: return t('review.group_done');
  }
}

export const dayPage = {
  name: 'manage-day',
  access: 'manager',
  async load(ctx) {
    const id = ctx.params.id;
    const [day, apps] = await Promise.all([
      api('GET', `market-days/${encodeURIComponent(id)}`, { signal: ctx.signal, auth: false }),
      allPages(`market-days/${encodeURIComponent(id)}/applications`, {}, { max: 5, signal: ctx.signal }),
    ]);
    return { day, apps };
  },
  render(ctx, { day, apps }) {
    const tz = day.timezone ?? cityOf(day.city)?.timezone;
    const byId = new Map(apps.map((a) => [a.id, a]));
    // Who holds each pitch: accepted stalls and open offers.
    const holders = new Map();
    for (const s of day.stalls ?? []) if (s.pitch) holders.set(s.pitch, { id: s.application_id, status: 'accepted', vendor: s.vendor, pitch: s.pitch });
    for (const a of apps) if ((a.status === 'accepted' || a.status === 'offered') && a.pitch) holders.set(a.pitch, a);

    let sel = selections.get(day.id) ?? null;
    if (sel) {
      const a = byId.get(sel.id);
      const still = sel.kind === 'app' ? a && ['pending', 'waitlisted'].includes(a.status) : a?.status === 'accepted' || [...holders.values()].some((x) => x.id === sel.id && x.status === 'accepted');
      if (!still) { sel = null; selections.delete(day.id); }
    }
    const editable = !['closed', 'cancelled'].includes(day.status);
    const vendorName = (id) => byId.get(id)?.vendor?.name ?? [...holders.values()].find((x) => x.id === id)?.vendor?.name ?? '';

    const select = (next) => {
      if (next && sel && next.id === sel.id) next = null; // a second tap deselects
      if (next) selections.set(day.id, next); else selections.delete(day.id);
      ctx.repaint();
      notify(next
        ? (next.kind === 'app' ? t('plan.selected_app', { vendor: vendorName(next.id) }) : t('plan.selected_stall', { vendor: vendorName(next.id) }))
        : t('plan.selection_cleared'));
    };

    async function tapPitch(code, node) {
      if (!editable) { notify(t('plan.day_over'), 'error'); return; }
      const holder = holders.get(code);
      if (holder) {
        if (holder.status === 'accepted') select({ kind: 'stall', id: holder.id });
        else notify(t('plan.pitch_offered', { pitch: code, vendor: holder.vendor?.name ?? '' }), 'error');
        return;
      }
      if (!sel) { notify(t('plan.select_first'), 'error'); return; }
      node?.setAttribute('aria-busy', 'true');
      const out = sel.kind === 'app'
        ? await run(`accept:${sel.id}`, `applications/${sel.id}/accept`, { pitch: code }, { ok: () => t('review.accepted_on', { vendor: vendorName(sel.id), pitch: code }) })
        : await run(`move:${sel.id}:${code}`, `applications/${sel.id}/move`, { pitch: code }, { ok: () => t('review.moved_to', { vendor: vendorName(sel.id), pitch: code }) });
      if (out) {
        selections.delete(day.id);
        ctx.reload({ focusKey: `pitch:${code}` });
      } else {
        node?.removeAttribute('aria-busy');
        ctx.reload({ keepNotice: true });
      }
    }

    return [
      h('div', { id: 'day', dataset: { marketDayId: day.id, status: day.status } },
        h('p', {}, h('a', { href: `#/manage/${encodeURIComponent(day.city)}` }, t('manage.back', { city: cityOf(day.city)?.name ?? day.city }))),
        h('h1', { tabindex: '-1' }, t('manage.day_heading', { market: day.market?.name ?? '', date: formatDate(day.date) })),
        h('p', {}, h('span', { class: `badge badge-${day.status}` }, tEnum('market_day.status', day.status)), ' ',
          t('market.hours_range', { start: formatTime(day.starts_at, tz), end: formatTime(day.ends_at, tz) }), ' · ',
          day.place?.name ?? ''),
        day.cancel_reason ? h('p', { class: 'warn' }, t('manage.cancelled_because', { reason: day.cancel_reason })) : null,
        dayControls(ctx, day)),
      h('div', { class: 'manage-layout' },
        planSection(day, holders, sel, editable, tapPitch, vendorName),
        reviewSection(ctx, day, apps, sel, editable, select, tz)),
    ];
  },
};

function dayControls(ctx, day) {
  const buttons = [];
  if (day.status === 'scheduled') {
    buttons.push(h('button', { type: 'button', class: 'button', dataset: { action: 'open-day', focusKey: 'open-day' }, onclick: async (ev) => {
      if (await run(`open:${day.id}`, `market-days/${day.id}/open`, undefined, { button: ev.currentTarget, ok: () => t('manage.opened') })) ctx.reload();
    } }, t('manage.open_day')));
  }
  if (day.status === 'open') {
    buttons.push(h('button', { type: 'button', class: 'button', dataset: { action: 'close-day', focusKey: 'close-day' }, onclick: async (ev) => {
      if (await run(`close:${day.id}`, `market-days/${day.id}/close`, undefined, { button: ev.currentTarget, ok: () => t('manage.closed') })) ctx.reload();
    } }, t('manage.close_day')));
  }
  if (!['scheduled', 'open'].includes(day.status)) return buttons.length ? h('div', { class: 'actions' }, buttons) : null;

  const form = h('form', { class: 'form cancel-form', dataset: { form: 'cancel' }, novalidate: true, hidden: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const reason = form.elements.reason.value.trim();
    if (!reason) { showErrors(form, new AppError({ errors: [{ field: 'reason', message: t('manage.reason_needed') }] })); return; }
    if (await run(`cancel:${day.id}`, `market-days/${day.id}/cancel`, { reason }, { form, ok: () => t('manage.cancelled') })) ctx.reload();
  } },
  formError(),
  field({ name: 'reason', label: t('manage.cancel_reason'), hint: t('manage.cancel_hint'), kind: 'textarea', rows: 3, maxlength: 500, required: true }),
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'button button-danger' }, t('manage.cancel_confirm')),
    h('button', { type: 'button', class: 'button button-quiet', onclick: () => { form.hidden = true; toggle.setAttribute('aria-expanded', 'false'); toggle.focus(); } }, t('action.keep'))));
  const toggle = h('button', { type: 'button', class: 'button button-quiet', 'aria-expanded': 'false', dataset: { action: 'cancel-day' }, onclick: () => {
    form.hidden = !form.hidden;
    toggle.setAttribute('aria-expanded', String(!form.hidden));
    if (!form.hidden) form.elements.reason.focus();
  } }, t('manage.cancel_day'));
  buttons.push(toggle);
  return h('div', { class: 'day-controls' }, h('div', { class: 'actions' }, buttons), form);
}

// planSection draws the square with every pitch as a button: a free pitch
// takes the selected application (or the selected stall moves there), a held
// one selects its stall. Arrow keys move between pitches.
function planSection(day, holders, sel, editable, tapPitch, vendorName) {
  const pitches = (day.pitches ?? []).filter((p) => [p.x, p.y, p.w, p.h].every(Number.isFinite) && p.w > 0 && p.h > 0);
  const headingId = 'plan-h';
  if (!pitches.length) {
    return h('section', { id: 'pitch-plan', 'aria-labelledby': headingId }, h('h2', { id: headingId }, t('plan.heading')), h('p', { class: 'muted' }, t('plan.none')));
  }
  const planW = Number.isFinite(day.plan_w) && day.plan_w > 0 ? day.plan_w : Math.max(...pitches.map((p) => p.x + p.w));
  const planH = Number.isFinite(day.plan_h) && day.plan_h > 0 ? day.plan_h : Math.max(...pitches.map((p) => p.y + p.h));
  const stroke = Math.max(0.06, Math.min(...pitches.map((p) => Math.min(p.w, p.h))) * 0.04);
  const sorted = [...pitches].sort((a, b) => collator().compare(a.code, b.code));
  const selName = sel ? vendorName(sel.id) : '';

  const label = (p) => {
    const holder = holders.get(p.code);
    const extras = [p.power && t('plan.power'), p.water && t('plan.water'), p.cover && t('plan.cover')].filter(Boolean).join(', ');
    let text;
    if (holder?.status === 'accepted') {
      text = sel?.kind === 'stall' && sel.id === holder.id
        ? t('plan.pitch_selected', { pitch: p.code, vendor: holder.vendor?.name ?? '' })
        : t('plan.pitch_taken_select', { pitch: p.code, vendor: holder.vendor?.name ?? '' });
    } else if (holder) {
      text = t('plan.pitch_offered', { pitch: p.code, vendor: holder.vendor?.name ?? '' });
    } else if (sel?.kind === 'app') {
      text = t('plan.pitch_free_assign', { pitch: p.code, vendor: selName });
    } else if (sel?.kind === 'stall') {
      text = t('plan.pitch_free_move', { pitch: p.code, vendor: selName });
    } else {
      text = t('plan.pitch_free', { pitch: p.code });
    }
    return extras ? `${text} (${extras})` : text;
  };

  const nodes = [];
  const picture = svg('svg', {
    class: `plan plan-edit${sel ? ' has-selection' : ''}`,
    viewBox: `0 0 ${+planW.toFixed(3)} ${+planH.toFixed(3)}`,
    role: 'group',
    'aria-label': t('plan.label', { place: day.place?.name ?? '' }),
    preserveAspectRatio: 'xMidYMid meet',
  },
  svg('rect', { class: 'plan-ground', x: 0, y: 0, width: planW, height: planH, rx: 0.5 }),
  sorted.map((p, i) => {
    const holder = holders.get(p.code);
    const st = !holder ? 'free' : holder.status === 'accepted' ? 'taken' : 'offered';
    const pressed = holder && sel?.kind === 'stall' && sel.id === holder.id;
    const code = String(p.code);
    const size = Math.min(Math.min(p.w, p.h) * 0.36, (p.w * 0.85) / Math.max(1, code.length * 0.62));
    const vname = holder?.vendor?.name ?? '';
    const g = svg('g', {
      class: `pitch pitch-${st}${pressed ? ' pitch-selected' : ''}`,
      role: 'button',
      tabindex: editable ? (i === 0 ? '0' : '-1') : '-1',
      'aria-label': label(p),
      'aria-pressed': holder && st === 'taken' ? String(Boolean(pressed)) : null,
      'aria-disabled': editable ? null : 'true',
      dataset: { pitch: code, state: st, applicationId: holder?.id, focusKey: `pitch:${code}` },
      onclick: (ev) => tapPitch(code, ev.currentTarget),
      onkeydown: (ev) => onPitchKey(ev, i),
      onfocus: () => { for (const n of nodes) n.setAttribute('tabindex', n === g ? '0' : '-1'); },
    },
    svg('rect', { x: p.x, y: p.y, width: p.w, height: p.h, rx: Math.min(p.w, p.h) * 0.08, 'stroke-width': stroke }),
    svg('text', { x: p.x + p.w / 2, y: p.y + p.h * (vname ? 0.38 : 0.5), 'font-size': +size.toFixed(3), 'text-anchor': 'middle', 'dominant-baseline': 'central', 'aria-hidden': 'true' }, code),
    vname ? svg('text', { class: 'pitch-vendor', x: p.x + p.w / 2, y: p.y + p.h * 0.72, 'font-size': +(size * 0.55).toFixed(3), 'text-anchor': 'middle', 'dominant-baseline': 'central', 'aria-hidden': 'true' },
      vname.length > 10 ? `${vname.slice(0, 9)}…` : vname) : null);
    nodes.push(g);
    return g;
  }));

  // Arrow keys move to the nearest pitch in that direction; Home and End to
  // the first and last; Enter and Space press.
  function onPitchKey(ev, i) {
    const p = sorted[i];
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); tapPitch(p.code, nodes[i]); return; }
    let target = -1;
    if (ev.key === 'Home') target = 0;
    else if (ev.key === 'End') target = sorted.length - 1;
    else {
      const dir = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] }[ev.key];
      if (!dir) return;
      const cx = p.x + p.w / 2; const cy = p.y + p.h / 2;
      let best = Infinity;
      sorted.forEach((q, j) => {
        if (j === i) return;
        const dx = q.x + q.w / 2 - cx; const dy = q.y + q.h / 2 - cy;
        const along = dx * dir[0] + dy * dir[1];
        if (along <= 0.01) return;
        const across = Math.abs(dx * dir[1]) + Math.abs(dy * dir[0]);
        const score = along + across * 2;
        if (score < best) { best = score; target = j; }
      });
    }
    if (target >= 0) { ev.preventDefault(); nodes[target].focus(); }
  }

  const free = sorted.filter((p) => !holders.has(p.code)).length;
  return h('section', { id: 'pitch-plan', class: 'plan-section', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, t('plan.heading')),
    h('p', { id: 'plan-instructions', class: 'plan-instructions' },
      !editable ? t('plan.day_over')
        : sel?.kind === 'app' ? t('plan.instructions_assign', { vendor: selName })
          : sel?.kind === 'stall' ? t('plan.instructions_move', { vendor: selName })
            : t('plan.instructions')),
    h('figure', { class: 'plan-figure' },
      picture,
      h('figcaption', { class: 'plan-caption' },
        h('span', {}, tn('plan.free_count', free, { total: sorted.length })),
        h('span', { class: 'legend', 'aria-hidden': 'true' },
          h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-taken' }), t('plan.taken')),
          h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-offered' }), t('plan.offered')),
          h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-free' }), t('plan.free'))))));
}

function reviewSection(ctx, day, apps, sel, editable, select, tz) {
  const groups = new Map(REVIEW_GROUPS.map((k) => [k, []]));
  for (const a of apps) (groups.get(a.status) ?? groups.get('done')).push(a);
  return h('section', { id: 'review', class: 'review', 'aria-labelledby': 'review-h' },
    h('h2', { id: 'review-h' }, t('review.heading')),
    apps.length ? null : h('p', { class: 'muted' }, t('review.none')),
    REVIEW_GROUPS.map((k) => {
      const list = groups.get(k);
      if (!list.length) return null;
      return h('section', { class: `review-group review-${k}`, 'aria-label': groupLabel(k) },
        h('h3', {}, groupLabel(k), ' ', h('span', { class: 'count' }, `(${list.length})`)),
        h('ul', { class: 'review-list' }, list.map((a) => reviewItem(ctx, a, sel, editable, select, tz))));
    }));
}

function reviewItem(ctx, a, sel, editable, select, tz) {
  const v = a.vendor ?? {};
  const selected = sel?.id === a.id;
  const actions = [];
  const canAssign = editable && ['pending', 'waitlisted'].includes(a.status);
  if (canAssign) {
    actions.push(h('button', { type: 'button', class: `button${selected ? '' : ' button-quiet'}`, 'aria-pressed': String(selected), 'aria-controls': 'pitch-plan', dataset: { action: 'select', focusKey: `select:${a.id}` },
      onclick: () => select({ kind: 'app', id: a.id }) }, t('review.choose_pitch')));
    actions.push(h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'accept', focusKey: `accept:${a.id}` }, onclick: async (ev) => {
      const out = await run(`accept:${a.id}`, `applications/${a.id}/accept`, {}, { button: ev.currentTarget, ok: (r) => t('review.accepted_on', { vendor: v.name ?? '', pitch: r.pitch ?? '' }) });
      if (out) ctx.reload();
    } }, a.preferred_pitch ? t('review.accept_preferred', { pitch: a.preferred_pitch }) : t('review.accept_any')));
  }
  if (editable && a.status === 'pending') {
    actions.push(h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'waitlist', focusKey: `waitlist:${a.id}` }, onclick: async (ev) => {
      if (await run(`waitlist:${a.id}`, `applications/${a.id}/waitlist`, undefined, { button: ev.currentTarget, ok: () => t('review.waitlisted', { vendor: v.name ?? '' }) })) ctx.reload();
    } }, t('review.waitlist')));
  }
  if (editable && a.status === 'accepted') {
    actions.push(h('button', { type: 'button', class: `button${selected ? '' : ' button-quiet'}`, 'aria-pressed': String(selected), 'aria-controls': 'pitch-plan', dataset: { action: 'select', focusKey: `select:${a.id}` },
      onclick: () => select({ kind: 'stall', id: a.id }) }, t('review.move')));
  }
  let rejectForm = null;
  if (editable && ['pending', 'waitlisted', 'offered', 'accepted'].includes(a.status)) {
    rejectForm = h('form', { class: 'form reject-form', dataset: { form: 'reject' }, novalidate: true, hidden: true, onsubmit: async (ev) => {
      ev.preventDefault();
      const reason = rejectForm.elements.reason.value.trim();
      if (!reason) { showErrors(rejectForm, new AppError({ errors: [{ field: 'reason', message: t('review.reason_needed') }] })); return; }
      if (await run(`reject:${a.id}`, `applications/${a.id}/reject`, { reason }, { form: rejectForm, ok: () => t('review.rejected', { vendor: v.name ?? '' }) })) ctx.reload();
    } },
    formError(),
    field({ name: 'reason', label: t('review.reject_reason'), hint: t('review.reject_hint'), kind: 'textarea', rows: 2, maxlength: 500, required: true }),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'button button-danger', dataset: { action: 'reject-confirm' } }, t('review.reject_confirm')),
      h('button', { type: 'button', class: 'button button-quiet', onclick: () => { rejectForm.hidden = true; toggle.setAttribute('aria-expanded', 'false'); toggle.focus(); } }, t('action.keep'))));
    const toggle = h('button', { type: 'button', class: 'button button-quiet', 'aria-expanded': 'false', dataset: { action: 'reject', focusKey: `reject:${a.id}` }, onclick: () => {
      rejectForm.hidden = !rejectForm.hidden;
      toggle.setAttribute('aria-expanded', String(!rejectForm.hidden));
      if (!rejectForm.hidden) rejectForm.elements.reason.focus();
    } }, t('review.reject'));
    actions.push(toggle);
  }
  const facts = [
    tEnum('vendor.kind', v.kind),
    v.categories?.length ? v.categories.join(', ') : null,
    a.preferred_pitch ? t('review.prefers', { pitch: a.preferred_pitch }) : null,
    a.status === 'waitlisted' && a.waitlist_position ? t('review.position', { position: a.waitlist_position }) : null,
    a.status === 'offered' && a.offer_expires_at ? t('review.offer_until', { pitch: a.pitch ?? '', until: formatDateTime(a.offer_expires_at, tz) }) : null,
    a.status === 'accepted' && a.pitch ? t('review.on_pitch', { pitch: a.pitch }) : null,
    a.status === 'accepted' && a.live_state ? tEnum('stall.live', a.live_state) : null,
  ].filter(Boolean);
  return h('li', { class: `review-item${selected ? ' is-selected' : ''}`, dataset: { applicationId: a.id, status: a.status, pitch: a.pitch, selected: selected ? '1' : null, vendorId: v.id } },
    h('p', { class: 'review-vendor' }, h('strong', {}, v.name ?? ''), ' ', h('span', { class: `badge badge-app-${a.status}` }, tEnum('application.status', a.status))),
    h('p', { class: 'muted' }, facts.join(' · ')),
    a.note ? h('p', { class: 'review-note' }, t('review.note', { note: a.note })) : null,
    a.status === 'rejected' && a.reason ? h('p', { class: 'muted' }, t('review.reason', { reason: a.reason })) : null,
    actions.length ? h('div', { class: 'actions' }, actions) : null,
    rejectForm);
}
