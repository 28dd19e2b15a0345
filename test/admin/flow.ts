// What the browser test does in the web admin, as a person would: through labels, roles and
// visible text only (no CSS selectors into the app's markup). Screenshots of each page go to
// docs/admin/ when `shots` is set (UPDATE_SCREENSHOTS=1), so CI never rewrites the repository.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';

export const SHOTS_DIR = fileURLToPath(new URL('../../docs/admin/', import.meta.url));

export interface FlowOptions {
  /** http://127.0.0.1:PORT */
  readonly base: string;
  /** An admin API token (`arcline token add --role admin`). */
  readonly token: string;
  /** A domain that does not exist yet; the flow creates it, a user and an alias in it. */
  readonly domain: string;
  readonly firstPassword: string;
  readonly newPassword: string;
  readonly shots: boolean;
  /** A recipient of a message waiting in the queue: the flow holds and releases it. */
  readonly queuedTo?: string;
}

async function shot(page: Page, o: FlowOptions, name: string): Promise<void> {
  if (!o.shots) return;
  await mkdir(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: `${SHOTS_DIR}${name}.png`, fullPage: true, animations: 'disabled' });
}

const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });
const nav = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();

/** Logs in with the admin token, adds the domain and a user, changes the user's password, adds an
 *  alias (and is shown a field error first), holds and releases a queued message, and logs in as
 *  the user with the new password. Returns the user's address. */
export async function adminFlow(page: Page, o: FlowOptions): Promise<string> {
  const user = `carol@${o.domain}`;

  // Log in with the token (a wrong one first: the problem is shown).
  await page.goto(`${o.base}/admin/`);
  await heading(page, 'arcline admin').waitFor();
  await shot(page, o, 'login');
  await page.getByLabel('API token', { exact: true }).fill('arc_wrong_token');
  await page.getByRole('button', { name: 'Log in with token' }).click();
  await page.getByRole('form', { name: 'Log in with an API token' }).getByRole('alert').first().waitFor();
  await page.getByLabel('API token', { exact: true }).fill(o.token);
  await page.getByRole('button', { name: 'Log in with token' }).click();
  await heading(page, 'Dashboard').waitFor();
  await page.getByText('Accepted (SMTP)').waitFor();
  await shot(page, o, 'dashboard');

  // Domains: add one, see it listed.
  await nav(page, 'Domains');
  await heading(page, 'Domains').waitFor();
  await page.getByLabel('New domain', { exact: true }).fill(o.domain);
  await page.getByRole('button', { name: 'Add domain' }).click();
  await page.getByRole('table', { name: 'Domains' }).getByRole('link', { name: o.domain, exact: true }).waitFor();
  await shot(page, o, 'domains');

  // The domain's page: DNS records (published or not), a DKIM key made here.
  await page.getByRole('link', { name: o.domain, exact: true }).click();
  await heading(page, o.domain).waitFor();
  await page.getByText(/^\d+ users?$/).waitFor();
  await page.getByRole('table', { name: 'DNS records' }).getByRole('row').nth(1).waitFor();
  await page.getByLabel('Selector', { exact: true }).fill('second');
  await page.getByLabel('Algorithm', { exact: true }).selectOption('ed25519');
  await page.getByRole('button', { name: 'New DKIM key' }).click();
  await page
    .getByRole('table', { name: 'DKIM keys' })
    .getByRole('rowheader', { name: 'second', exact: true })
    .waitFor();
  await page.getByRole('button', { name: 'Check again' }).click();
  await page.getByRole('table', { name: 'DNS records' }).getByText(`second._domainkey.${o.domain}`).waitFor();
  await page.getByRole('button', { name: 'New DKIM key', disabled: false }).waitFor();
  // A rotation: the new keys are pending; activating one before its record is in DNS is refused.
  await page.getByRole('button', { name: 'Rotate keys' }).click();
  const keys = page.getByRole('table', { name: 'DKIM keys' });
  await keys.getByText('pending (not signing)').first().waitFor();
  await keys.getByRole('button', { name: 'Activate' }).first().click();
  await page.getByText(/not (published yet|resolvable now)/).waitFor();
  await shot(page, o, 'domain');

  // Users: add one (a quota in MiB), see it listed.
  await nav(page, 'Users');
  await heading(page, 'Users').waitFor();
  await page.getByLabel('Domain', { exact: true }).selectOption(o.domain);
  await page.getByLabel('New user', { exact: true }).fill('carol');
  await page.getByLabel('Password', { exact: true }).fill(o.firstPassword);
  await page.getByLabel('Quota (MiB)', { exact: true }).fill('100');
  await page.getByRole('button', { name: 'Add user' }).click();
  const userRow = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: user }) });
  await userRow.getByText('100.0 MiB').waitFor();

  // Change the user's password.
  await page.getByRole('button', { name: `Change password of ${user}` }).click();
  await page.getByLabel(`New password for ${user}`, { exact: true }).fill(o.newPassword);
  await page.getByRole('button', { name: 'Set password' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: `The password of ${user} was changed.` })
    .waitFor();
  await shot(page, o, 'users');

  // Aliases: a destination that is no address gets the server's message; then a good one is
  // listed and the message is gone.
  await nav(page, 'Aliases');
  await heading(page, 'Aliases').waitFor();
  await page.getByLabel('Domain', { exact: true }).selectOption(o.domain);
  await page.getByLabel('Alias', { exact: true }).fill('info');
  await page.getByLabel('Destinations', { exact: true }).fill('not-an-address');
  await page.getByRole('button', { name: 'Save alias' }).click();
  const form = page.getByRole('form', { name: 'Add or replace an alias' });
  await form.getByRole('alert').first().waitFor();
  await page.getByLabel('Destinations', { exact: true }).fill(user);
  await page.getByRole('button', { name: 'Save alias' }).click();
  await page.getByRole('rowheader', { name: `info@${o.domain}` }).waitFor();
  assert.equal(await form.getByRole('alert').count(), 0);
  await shot(page, o, 'aliases');

  // Queue.
  await nav(page, 'Queue');
  await heading(page, 'Queue').waitFor();
  if (o.queuedTo) {
    const row = page.getByRole('row').filter({ hasText: o.queuedTo });
    await row.getByRole('button', { name: 'Hold', exact: true }).click();
    await row.getByRole('button', { name: 'Release', exact: true }).waitFor();
    await shot(page, o, 'queue');
    await row.getByRole('button', { name: 'Release', exact: true }).click();
    await row.getByRole('button', { name: 'Hold', exact: true }).waitFor();
  } else {
    await page.getByText('The queue is empty.').waitFor();
    await shot(page, o, 'queue');
  }

  // Networks: a bad address is refused, a deny entry is listed, then removed.
  await nav(page, 'Networks');
  await heading(page, 'Networks').waitFor();
  const netForm = page.getByRole('form', { name: 'Add a network' });
  await netForm.getByLabel('Address or network', { exact: true }).fill('not-an-address');
  await netForm.getByRole('button', { name: 'Add network' }).click();
  await netForm.getByRole('alert').first().waitFor();
  await netForm.getByLabel('Address or network', { exact: true }).fill('192.0.2.0/24');
  await netForm.getByLabel('Comment', { exact: true }).fill('documentation range');
  await netForm.getByRole('button', { name: 'Add network' }).click();
  const netRow = page
    .getByRole('table', { name: 'Allow and deny lists' })
    .getByRole('row')
    .filter({ hasText: '192.0.2.0/24' });
  await netRow.getByText('documentation range').waitFor();
  await shot(page, o, 'networks');
  await netRow.getByRole('button', { name: 'Remove' }).click();
  await netRow.getByRole('button', { name: /^Remove 192\.0\.2\.0\/24/ }).click();
  await page.getByText('No networks on either list.').waitFor();

  // Log out; log in as the user with the new password: only "my account".
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Address', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(o.newPassword);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await heading(page, 'My account').waitFor();
  await page.getByText(/of 100\.0 MiB/).waitFor();
  const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
  assert.deepEqual(await links.allTextContents(), ['My account']);
  await shot(page, o, 'account');
  return user;
}
