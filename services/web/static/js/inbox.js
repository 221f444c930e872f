// The inbox (#/inbox): the resident's recent notifications on what they
// follow, newest first, with unread marks; mark one or all as read. Works
// for anonymous residents (the device id) and signed-in ones.
//
// Hooks: #inbox li[data-notification-id] with data-read="0|1" and data-kind;
// button[data-mark-read] on unread entries; #inbox-mark-all; #inbox-more.

import { h, t, tn, formatDateTime, state, notify, errorText } from './core.js';
import { notifierApi, loadFollows } from './follows.js';
import { notificationText } from './messages.js';

const PAGE = 50;

async function fetchPage(cursor, signal) {
  const body = await notifierApi('GET', 'inbox', { query: { limit: PAGE, cursor }, signal });
  return {
    items: (Array.isArray(body?.items) ? body.items : []).filter((i) => i && typeof i.id === 'string'),
    next: typeof body?.next_cursor === 'string' && body.next_cursor ? body.next_cursor : null,
  };
}

async function markRead(ctx, data, ids, focusKey) {
  if (!ids.length) return;
  try {
    for (let i = 0; i < ids.length; i += 100) {
      await notifierApi('POST', 'inbox/read', { body: { ids: ids.slice(i, i + 100) } });
    }
  } catch (err) {
    notify(t('inbox.mark_failed', { reason: errorText(err) }), 'error');
    return;
  }
  const done = new Set(ids);
  for (const item of data.items) if (done.has(item.id)) item.read = true;
  notify(tn('inbox.marked', ids.length));
  ctx.repaint({ focusKey });
}

function cityName(slug) {
  return state.cities.find((c) => c.slug === slug)?.name ?? slug ?? '';
}

function cityZone(slug) {
  return state.cities.find((c) => c.slug === slug)?.timezone;
}

export const inboxPage = {
  name: 'inbox',
  async load(ctx) {
    loadFollows();
    const page = await fetchPage(null, ctx.signal);
    return { items: page.items, next: page.next };
  },
  render(ctx, data) {
    const unread = data.items.filter((i) => !i.read);
    const list = h('ol', { id: 'inbox', class: 'inbox' }, data.items.map((item) => {
      const read = Boolean(item.read);
      const text = notificationText(item, cityName(item.city));
      return h('li', {
        class: `inbox-item${read ? '' : ' inbox-unread'}`,
        dataset: { notificationId: item.id, read: read ? '1' : '0', kind: item.kind },
      },
      h('span', { class: 'inbox-mark', 'aria-hidden': 'true' }),
      h('div', { class: 'inbox-body' },
        h('p', { class: 'inbox-text' },
          read ? null : h('strong', { class: 'inbox-new' }, t('inbox.unread'), ': '),
          text),
        h('p', { class: 'inbox-meta' },
          h('time', { datetime: item.time ?? '' }, item.time ? formatDateTime(item.time, cityZone(item.city)) : ''),
          item.city ? ` · ${cityName(item.city)}` : ''),
      ),
      read ? null : h('button', {
        type: 'button', class: 'button button-quiet button-small',
        dataset: { markRead: item.id, focusKey: `read-${item.id}` },
        'aria-label': t('inbox.mark_read_one', { text }),
        onclick: () => markRead(ctx, data, [item.id], 'inbox-heading'),
      }, t('inbox.mark_read')));
    }));
    return [
      h('h1', { tabindex: '-1', dataset: { focusKey: 'inbox-heading' } }, t('inbox.heading')),
      h('p', { class: 'muted' }, t('inbox.intro')),
      h('p', { id: 'inbox-count' },
        unread.length ? tn('inbox.unread_count', unread.length) : t('inbox.all_read')),
      unread.length ? h('p', {}, h('button', {
        type: 'button', id: 'inbox-mark-all', class: 'button',
        dataset: { focusKey: 'inbox-mark-all' },
        onclick: () => markRead(ctx, data, unread.map((i) => i.id), 'inbox-heading'),
      }, t('inbox.mark_all'))) : null,
      data.items.length ? list : h('p', { class: 'empty' }, t('inbox.empty')),
      data.next ? h('p', {}, h('button', {
        type: 'button', id: 'inbox-more', class: 'button button-quiet',
        dataset: { focusKey: 'inbox-more' },
        onclick: async () => {
          try {
            const page = await fetchPage(data.next);
            const have = new Set(data.items.map((i) => i.id));
            data.items.push(...page.items.filter((i) => !have.has(i.id)));
            data.next = page.next;
            ctx.repaint({ focusKey: page.next ? 'inbox-more' : 'inbox-heading' });
          } catch (err) {
            notify(errorText(err), 'error');
          }
        },
      }, t('inbox.more'))) : null,
    ];
  },
};
