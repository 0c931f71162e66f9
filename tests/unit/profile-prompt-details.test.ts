import { describe, expect, it } from 'vitest';
import { profilePromptDetails } from '../../src/oidc/profile-prompt.ts';

// The profile prompt's details travel in the interaction (stored as JSON, read back on every
// request of the question screen): one codec writes them and checks them on the way back.

const details = { screen: { setId: 'coffee', setVersion: 3, questionIds: ['brew_method', 'milk'] }, sessionKey: 'session-uid.1760000000' };

describe('the profile prompt\'s details', () => {
  it('come back as they went, through JSON as the interaction stores them', () => {
    const stored = JSON.parse(JSON.stringify(profilePromptDetails.encode(details))) as unknown;
    expect(profilePromptDetails.decode(stored)).toEqual(details);
  });

  it('keep the flat shape stored before, so interactions begun before an upgrade still show their questions', () => {
    expect(profilePromptDetails.encode(details)).toEqual({ setId: 'coffee', setVersion: 3, questionIds: ['brew_method', 'milk'], sessionKey: 'session-uid.1760000000' });
    expect(profilePromptDetails.decode({ setId: '_reconsent', setVersion: 0, questionIds: ['offers'], sessionKey: 'k' }))
      .toEqual({ screen: { setId: '_reconsent', setVersion: 0, questionIds: ['offers'] }, sessionKey: 'k' });
  });

  it('are refused when they are not a profile prompt\'s, whole and well-typed', () => {
    const valid = profilePromptDetails.encode(details);
    const damaged: unknown[] = [
      undefined, null, 'coffee', {},
      // Another prompt's details.
      { missingOIDCScope: ['openid', 'email'] },
      { ...valid, sessionKey: undefined }, { ...valid, sessionKey: '' },
      { ...valid, setId: '' }, { ...valid, setId: 7 },
      { ...valid, setVersion: '3' }, { ...valid, setVersion: 1.5 }, { ...valid, setVersion: -1 },
      { ...valid, questionIds: 'brew_method' }, { ...valid, questionIds: [1] }, { ...valid, questionIds: [''] },
    ];
    for (const value of damaged) expect(profilePromptDetails.decode(value), JSON.stringify(value)).toBeUndefined();
  });
});
