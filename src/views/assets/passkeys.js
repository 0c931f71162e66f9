// Passkeys on Parley's pages, with @simplewebauthn/browser (served from our origin as
// /assets/webauthn.js). Every form with data-passkey shows itself when the browser has WebAuthn;
// its button asks for a passkey (kind "sign-in") or makes one (kind "register"). A form with
// data-autofill also offers passkeys in the username field's autofill. The answer is posted as
// an ordinary form, so the server answers as it does to any form: a redirect, or the page again.
'use strict';
(function () {
  var webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  function options(form) {
    var body = new URLSearchParams();
    body.set('csrf', form.querySelector('input[name="csrf"]').value);
    var name = form.querySelector('input[name="name"]');
    if (name) body.set('name', name.value);
    return fetch(form.getAttribute('data-options'), { method: 'POST', body: body, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('options refused: ' + response.status);
        return response.json();
      });
  }

  function ceremony(form, optionsJSON, autofill) {
    return form.getAttribute('data-passkey') === 'register'
      ? webauthn.startRegistration({ optionsJSON: optionsJSON })
      : webauthn.startAuthentication({ optionsJSON: optionsJSON, useBrowserAutofill: autofill });
  }

  function submit(form, answer) {
    form.querySelector('input[name="response"]').value = JSON.stringify(answer);
    form.submit();
  }

  function failed(form, error) {
    // A newer ceremony (the button after autofill) aborts the older one: not a failure.
    if (error && error.name === 'AbortError') return;
    var message = form.querySelector('.passkey__error');
    if (message) message.hidden = false;
  }

  Array.prototype.forEach.call(document.querySelectorAll('form[data-passkey]'), function (form) {
    form.hidden = false;
    form.querySelector('.passkey__button').addEventListener('click', function () {
      options(form).then(function (o) { return ceremony(form, o, false); })
        .then(function (answer) { submit(form, answer); }, function (error) { failed(form, error); });
    });
    if (form.hasAttribute('data-autofill')) {
      webauthn.browserSupportsWebAuthnAutofill().then(function (supported) {
        if (!supported) return undefined;
        return options(form).then(function (o) { return ceremony(form, o, true); })
          .then(function (answer) { submit(form, answer); }, function (error) { failed(form, error); });
      });
    }
  });

  // The registration page's passkey way: the registration form's own fields (email, name, date of
  // birth, terms) go with the options request and with the answer; its password does not.
  Array.prototype.forEach.call(document.querySelectorAll('[data-passkey-account]'), function (way) {
    var form = way.closest('form');
    way.hidden = false;
    way.querySelector('.passkey__button').addEventListener('click', function () {
      // The form's own checks first (the address, the date of birth, each terms box), all but the
      // password's: a passkey made for a form the server then refuses would stay on the device.
      var incomplete = Array.prototype.find.call(form.elements, function (field) {
        return field.name !== 'password' && field.willValidate && !field.checkValidity();
      });
      if (incomplete) {
        incomplete.reportValidity();
        return;
      }
      var body = new URLSearchParams(new FormData(form));
      body.delete('password');
      body.delete('response');
      fetch(way.getAttribute('data-options'), { method: 'POST', body: body, credentials: 'same-origin' })
        .then(function (response) {
          if (!response.ok) throw new Error('options refused: ' + response.status);
          return response.json();
        })
        .then(function (o) { return webauthn.startRegistration({ optionsJSON: o }); })
        .then(function (answer) {
          var password = form.querySelector('input[name="password"]');
          if (password) password.disabled = true;
          form.setAttribute('action', way.getAttribute('data-action'));
          submit(form, answer);
        }, function (error) { failed(way, error); });
    });
  });
})();
