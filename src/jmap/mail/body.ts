// An Email's body parts (RFC 8621 §4.1.4): bodyStructure as a tree of EmailBodyPart, and
// textBody, htmlBody and attachments chosen by the RFC's own algorithm (its parseStructure
// pseudo-code, followed line by line in `classify`). Built from the MIME structure that
// mime/structure.ts parses; no part body is read here.
//
// partIds are the IMAP section numbers (RFC 9051 §6.4.5: "1", "2.1"), so the blob of a part is
// found again with resolvePart; multiparts have none (RFC 8621: null exactly for multipart/*).

import { decodeParams } from '../../mime/params.ts';
import { headerValue, type MimePart, parseParams } from '../../mime/structure.ts';
import { asText } from './header-forms.ts';
import { type EmailHeader, headerList } from './headers.ts';

export interface EmailBodyPart {
  readonly partId: string | null;
  readonly blobId: string | null;
  /** Octets after transfer decoding (as the part's blob holds them). */
  readonly size: number;
  readonly headers: EmailHeader[];
  readonly name: string | null;
  readonly type: string;
  readonly charset: string | null;
  readonly disposition: string | null;
  readonly cid: string | null;
  readonly language: string[] | null;
  readonly location: string | null;
  readonly subParts: EmailBodyPart[] | null;
}

/** A body part and the MIME part it describes (to read its body for bodyValues, a preview). */
export interface BodyTree {
  readonly part: EmailBodyPart;
  readonly mime: MimePart;
  readonly children: BodyTree[];
}

/** The body structure of a parsed message; `blobIdOf` makes the blobId of a part. */
export function bodyTree(
  root: MimePart,
  blobIdOf: (partId: string) => string,
  sizeOf: (p: MimePart) => number,
): BodyTree {
  const build = (p: MimePart, partId: string | null): BodyTree => {
    const multi = p.type === 'multipart';
    const children = multi ? p.parts.map((c, i) => build(c, partId === null ? `${i + 1}` : `${partId}.${i + 1}`)) : [];
    const id = multi ? null : (partId ?? '1');
    return { part: describe(p, id, id === null ? null : blobIdOf(id), sizeOf(p), children), mime: p, children };
  };
  // The root's children are numbered "1", "2" ...; a root that is no multipart is part "1".
  return build(root, null);
}

function describe(
  p: MimePart,
  partId: string | null,
  blobId: string | null,
  size: number,
  children: BodyTree[],
): EmailBodyPart {
  const h = p.header;
  const type = `${p.type}/${p.subtype}`;
  const ctParams = decodeParams(p.params);
  const dispValue = headerValue(h, 'content-disposition');
  const semi = dispValue?.indexOf(';') ?? -1;
  const dispType = dispValue === null ? null : (semi < 0 ? dispValue : dispValue.slice(0, semi)).trim().toLowerCase();
  const dispParams =
    dispValue === null || semi < 0 ? new Map<string, string>() : decodeParams(parseParams(dispValue.slice(semi)));
  const name = dispParams.get('filename') ?? ctParams.get('name') ?? null;
  const cid = headerValue(h, 'content-id');
  const language = headerValue(h, 'content-language');
  const location = headerValue(h, 'content-location');
  return {
    partId,
    blobId,
    size,
    headers: headerList(h),
    name: name === null ? null : asText(name),
    type,
    // RFC 8621 §4.1.4 charset: the parameter, or "us-ascii" implied for text/* (the parser
    // adds it), or null.
    charset: ctParams.get('charset') ?? null,
    disposition: dispType === '' ? null : dispType,
    cid: cid === null ? null : cid.replace(/^\s*<|>\s*$/g, '').trim() || null,
    language:
      language === null
        ? null
        : language
            .split(',')
            .map((l) => l.trim())
            .filter((l) => l !== ''),
    location: location === null ? null : location.trim(),
    subParts: p.type === 'multipart' ? children.map((c) => c.part) : null,
  };
}

export interface BodyLists {
  readonly textBody: BodyTree[];
  readonly htmlBody: BodyTree[];
  readonly attachments: BodyTree[];
}

const isInlineMediaType = (type: string) =>
  type.startsWith('image/') || type.startsWith('audio/') || type.startsWith('video/');

/** RFC 8621 §4.1.4: textBody, htmlBody and attachments, exactly as the RFC's pseudo-code. */
export function bodyLists(root: BodyTree): BodyLists {
  const textBody: BodyTree[] = [];
  const htmlBody: BodyTree[] = [];
  const attachments: BodyTree[] = [];
  classify([root], 'mixed', false, htmlBody, textBody, attachments);
  return { textBody, htmlBody, attachments };
}

function classify(
  parts: readonly BodyTree[],
  multipartType: string,
  inAlternative: boolean,
  htmlBodyIn: BodyTree[] | null,
  textBodyIn: BodyTree[] | null,
  attachments: BodyTree[],
): void {
  let htmlBody = htmlBodyIn;
  let textBody = textBodyIn;
  // For multipartType == alternative
  const textLength = textBody ? textBody.length : -1;
  const htmlLength = htmlBody ? htmlBody.length : -1;
  for (let i = 0; i < parts.length; i++) {
    const tree = parts[i] as BodyTree;
    const part = tree.part;
    const isMulti = part.type.startsWith('multipart/');
    // Is this a body part rather than an attachment
    const isInline =
      part.disposition !== 'attachment' &&
      // Must be one of the allowed body types
      (part.type === 'text/plain' || part.type === 'text/html' || isInlineMediaType(part.type)) &&
      // If multipart/related, only the first part can be inline. If a text part with a
      // filename, and not the first item in the multipart, assume it is an attachment
      (i === 0 || (multipartType !== 'related' && (isInlineMediaType(part.type) || !part.name)));
    if (isMulti) {
      const subMultiType = part.type.split('/')[1] ?? '';
      classify(
        tree.children,
        subMultiType,
        inAlternative || subMultiType === 'alternative',
        htmlBody,
        textBody,
        attachments,
      );
    } else if (isInline) {
      if (multipartType === 'alternative') {
        if (part.type === 'text/plain') textBody?.push(tree);
        else if (part.type === 'text/html') htmlBody?.push(tree);
        else attachments.push(tree);
        continue;
      }
      if (inAlternative) {
        if (part.type === 'text/plain') htmlBody = null;
        if (part.type === 'text/html') textBody = null;
      }
      textBody?.push(tree);
      htmlBody?.push(tree);
      if ((!textBody || !htmlBody) && isInlineMediaType(part.type)) attachments.push(tree);
    } else {
      attachments.push(tree);
    }
  }
  if (multipartType === 'alternative' && textBody && htmlBody) {
    // Found HTML part only
    if (textLength === textBody.length && htmlLength !== htmlBody.length)
      for (let i = htmlLength; i < htmlBody.length; i++) textBody.push(htmlBody[i] as BodyTree);
    // Found plaintext part only
    if (htmlLength === htmlBody.length && textLength !== textBody.length)
      for (let i = textLength; i < textBody.length; i++) htmlBody.push(textBody[i] as BodyTree);
  }
}

/** hasAttachment (RFC 8621 §4.1.4 leaves it to the server): an attachment other than an inline
 *  image, sound or video that the HTML references by Content-ID. */
export function hasAttachment(lists: BodyLists): boolean {
  return lists.attachments.some(
    (t) => !(t.part.disposition !== 'attachment' && t.part.cid !== null && isInlineMediaType(t.part.type)),
  );
}
