// The allowlist shipped with arcline (format: greylist-allowlist.ts): the reverse-DNS domains of
// large senders that retry from a pool of addresses, so greylisting would hold their mail for
// hours. Written for arcline from the senders' published outbound host names; the operator's
// [greylist] allowlist_file adds to it between releases (docs/spam.md).

export const SHIPPED_ALLOWLIST = `
# Google (Gmail, Workspace): mail-*.google.com
google.com
# Microsoft (Outlook.com, Microsoft 365): *.outbound.protection.outlook.com, *.hotmail.com
outbound.protection.outlook.com
hotmail.com
# Yahoo, AOL: *.mail.yahoo.com, *.aol.com
yahoo.com
yahoodns.net
aol.com
# Apple iCloud
icloud.com
me.com
apple.com
# Amazon SES: *.smtp-out.amazonses.com
amazonses.com
# Proton Mail
protonmail.ch
proton.ch
# Fastmail
messagingengine.com
# Zoho
zoho.com
zoho.eu
# GMX, WEB.DE, mail.com (United Internet)
gmx.net
web.de
# Mailchimp / Mandrill
mcsv.net
rsgsv.net
mandrillapp.com
# SendGrid, Mailgun, Postmark, SparkPost
sendgrid.net
mailgun.net
mtasv.net
sparkpostmail.com
# Salesforce Marketing Cloud, Mimecast, Proofpoint
exacttarget.com
mimecast.com
pphosted.com
# Facebook, LinkedIn, GitHub
facebook.com
linkedin.com
github.net
`;
