// Sign-in and sign-up pages.
//
// Hooks: form[data-form="signin"], form[data-form="signup"] with inputs
// named email, password (and name); [data-form-error] holds the form's
// message, .field-error the message next to each field.

import { h, t } from './core.js';
import { signIn, signUp, keyFor, settleKey } from './api.js';
import { field, formError, busy, showErrors, clearErrors } from './forms.js';

export const signinPage = {
  name: 'signin',
  render(ctx) {
    const form = h('form', { class: 'form card', dataset: { form: 'signin' }, novalidate: true, onsubmit: submit },
      formError(),
      field({ name: 'email', label: t('auth.email'), type: 'email', autocomplete: 'username', required: true, inputmode: 'email' }),
      field({ name: 'password', label: t('auth.password'), type: 'password', autocomplete: 'current-password', required: true }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, t('auth.signin'))),
    );
    async function submit(ev) {
      ev.preventDefault();
      clearErrors(form);
      const email = form.elements.email.value.trim();
      const password = form.elements.password.value;
      const body = { email, password };
      const scope = 'signin';
      busy(form, true);
      try {
        await signIn(email, password, keyFor(scope, body));
        settleKey(scope);
        ctx.signedIn();
      } catch (err) {
        settleKey(scope, err);
        showErrors(form, err);
      } finally {
        busy(form, false);
      }
    }
    return [
      h('h1', { tabindex: '-1' }, t('auth.signin_heading')),
      form,
      h('p', {}, t('auth.no_account'), ' ', h('a', { href: '#/signup', dataset: { nav: 'signup' } }, t('auth.signup_link'))),
    ];
  },
};

export const signupPage = {
  name: 'signup',
  render(ctx) {
    const form = h('form', { class: 'form card', dataset: { form: 'signup' }, novalidate: true, onsubmit: submit },
      formError(),
      field({ name: 'name', label: t('auth.name'), autocomplete: 'name', required: true, maxlength: 120 }),
      field({ name: 'email', label: t('auth.email'), type: 'email', autocomplete: 'email', required: true, inputmode: 'email' }),
      field({ name: 'password', label: t('auth.password'), hint: t('auth.password_hint'), type: 'password', autocomplete: 'new-password', required: true, minlength: 10, maxlength: 200 }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, t('auth.signup'))),
    );
    async function submit(ev) {
      ev.preventDefault();
      clearErrors(form);
      const name = form.elements.name.value.trim();
      const email = form.elements.email.value.trim();
      const password = form.elements.password.value;
      const scope = 'signup';
      busy(form, true);
      try {
        await signUp(name, email, password, keyFor(scope, { name, email, password }));
        settleKey(scope);
        ctx.signedIn();
      } catch (err) {
        settleKey(scope, err);
        showErrors(form, err);
      } finally {
        busy(form, false);
      }
    }
    return [
      h('h1', { tabindex: '-1' }, t('auth.signup_heading')),
      h('p', {}, t('auth.signup_intro')),
      form,
      h('p', {}, t('auth.have_account'), ' ', h('a', { href: '#/signin', dataset: { nav: 'signin' } }, t('auth.signin_link'))),
    ];
  },
};
