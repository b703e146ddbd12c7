// A small XML reader as lenient as gSOAP's non-strict parser, so the sim accepts and refuses the
// same request bodies kopano-server does:
// * an end tag closes the innermost open element whatever its name (fixture d4:
//   `<szUsername>alice</szPassword>` is fine), because gSOAP only compares end-tag names in
//   strict mode;
// * comments, processing instructions and <!DOCTYPE ...> are skipped; entities are never
//   defined or expanded beyond the predefined ones and &#N; (no billion laughs here);
// * the body may stop anywhere: the result says whether the root element was closed, and
//   `closed` on every element tells where a truncated document stopped (fixture d2);
// * nesting deeper than gSOAP's default maxlevel (10 000) stops the parse.
// It works on bytes so that the connection layer can use it to find where a header-less XML
// request ends.

export interface XmlElement {
  /** Tag as written, e.g. "ns:logon" (this is what gSOAP puts in fault strings). */
  tag: string;
  prefix: string;
  local: string;
  /** Namespace URI; null = unprefixed without a default namespace; undefined = undeclared prefix. */
  ns: string | null | undefined;
  attrs: Array<[string, string]>;
  children: XmlElement[];
  /** Character data before the first child element (what gSOAP reads as a simple value). */
  text: string;
  /** Its end tag (or "/>") was seen. */
  closed: boolean;
}

export interface XmlDoc {
  root: XmlElement | null;
  /** The root element was closed. */
  complete: boolean;
  /** Byte offset just after the root element (when complete). */
  end: number;
  /** Nesting went deeper than maxDepth; parsing stopped there. */
  tooDeep: boolean;
  /** At least one '<' was seen. */
  sawMarkup: boolean;
}

export const GSOAP_MAXLEVEL = 10_000;

const LT = 0x3C, GT = 0x3E, SLASH = 0x2F, BANG = 0x21, QMARK = 0x3F, EQ = 0x3D;
const DQUOTE = 0x22, SQUOTE = 0x27;

// ignoreBOM: a U+FEFF at the start of a text run is text (gSOAP keeps it), not a byte-order mark
// to drop; otherwise "\uFEFFpw" would arrive as "pw".
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

function isBlank(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0A || b === 0x0D;
}

function startsWith(buf: Uint8Array, at: number, ascii: string): boolean {
  if (at + ascii.length > buf.length) return false;
  for (let k = 0; k < ascii.length; k++) {
    if (buf[at + k] !== ascii.charCodeAt(k)) return false;
  }
  return true;
}

function indexOfSeq(buf: Uint8Array, from: number, ascii: string): number {
  const first = ascii.charCodeAt(0);
  for (let k = buf.indexOf(first, from); k !== -1; k = buf.indexOf(first, k + 1)) {
    if (startsWith(buf, k, ascii)) return k;
  }
  return -1;
}

const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** Replaces the predefined entities and character references; unknown ones become U+FFFD. */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&([^;&]{0,7});/g, (_m, name: string) => {
    if (name.startsWith("#")) {
      const hex = name[1] === "x" || name[1] === "X";
      const n = Number.parseInt(name.slice(hex ? 2 : 1), hex ? 16 : 10);
      return Number.isFinite(n) && n >= 0 && n <= 0x10FFFF ? String.fromCodePoint(n) : "\uFFFD";
    }
    return NAMED[name] ?? "\uFFFD";
  });
}

interface Scope {
  parent: Scope | null;
  decls: Map<string, string> | null;
}

function lookup(scope: Scope | null, prefix: string): string | null | undefined {
  if (prefix === "xml") return "http://www.w3.org/XML/1998/namespace";
  for (let s = scope; s; s = s.parent) {
    const v = s.decls?.get(prefix);
    if (v !== undefined) return v === "" ? null : v;
  }
  return prefix === "" ? null : undefined;
}

/** Skips a <!...> or <?...?> construct starting at `i` ('<'); returns the index after it, or -1. */
function skipMarkupDecl(buf: Uint8Array, i: number): number {
  if (startsWith(buf, i, "<!--")) {
    const e = indexOfSeq(buf, i + 4, "-->");
    return e === -1 ? -1 : e + 3;
  }
  if (startsWith(buf, i, "<?")) {
    const e = indexOfSeq(buf, i + 2, "?>");
    return e === -1 ? -1 : e + 2;
  }
  // <!DOCTYPE ...> and friends: skip with <...> nesting, like gSOAP (no DTD processing).
  let depth = 0;
  for (let k = i; k < buf.length; k++) {
    if (buf[k] === LT) depth++;
    else if (buf[k] === GT && --depth === 0) return k + 1;
  }
  return -1;
}

interface StartTag {
  name: string;
  attrs: Array<[string, string]>;
  selfClosing: boolean;
  next: number;
}

/** Parses a start tag at `i` ('<'); null when the input ends inside it. */
function readStartTag(buf: Uint8Array, i: number): StartTag | null {
  let k = i + 1;
  while (k < buf.length && isBlank(buf[k])) k++;
  const nameStart = k;
  while (k < buf.length && !isBlank(buf[k]) && buf[k] !== SLASH && buf[k] !== GT) k++;
  const name = utf8.decode(buf.subarray(nameStart, k));
  const attrs: Array<[string, string]> = [];
  for (;;) {
    while (k < buf.length && isBlank(buf[k])) k++;
    if (k >= buf.length) return null;
    if (buf[k] === GT) return { name, attrs, selfClosing: false, next: k + 1 };
    if (buf[k] === SLASH) {
      if (k + 1 >= buf.length) return null;
      if (buf[k + 1] === GT) return { name, attrs, selfClosing: true, next: k + 2 };
      k++;
      continue;
    }
    const aStart = k;
    while (
      k < buf.length && !isBlank(buf[k]) && buf[k] !== EQ && buf[k] !== GT && buf[k] !== SLASH
    ) {
      k++;
    }
    const aName = utf8.decode(buf.subarray(aStart, k));
    while (k < buf.length && isBlank(buf[k])) k++;
    if (k >= buf.length) return null;
    if (buf[k] !== EQ) {
      attrs.push([aName, ""]);
      continue;
    }
    k++;
    while (k < buf.length && isBlank(buf[k])) k++;
    if (k >= buf.length) return null;
    const q = buf[k];
    if (q === DQUOTE || q === SQUOTE) {
      const e = buf.indexOf(q, k + 1);
      if (e === -1) return null;
      attrs.push([aName, decodeEntities(utf8.decode(buf.subarray(k + 1, e)))]);
      k = e + 1;
    } else {
      const vStart = k;
      while (k < buf.length && !isBlank(buf[k]) && buf[k] !== GT) k++;
      attrs.push([aName, decodeEntities(utf8.decode(buf.subarray(vStart, k)))]);
    }
  }
}

function makeElement(tag: StartTag, scope: Scope | null): { el: XmlElement; scope: Scope } {
  let decls: Map<string, string> | null = null;
  for (const [n, v] of tag.attrs) {
    if (n === "xmlns") (decls ??= new Map()).set("", v);
    else if (n.startsWith("xmlns:")) (decls ??= new Map()).set(n.slice(6), v);
  }
  // Only elements that declare namespaces get a scope of their own: lookups stay short even
  // for 10 000 nested elements.
  const own: Scope = decls ? { parent: scope, decls } : scope ?? { parent: null, decls: null };
  const colon = tag.name.indexOf(":");
  const prefix = colon === -1 ? "" : tag.name.slice(0, colon);
  const local = colon === -1 ? tag.name : tag.name.slice(colon + 1);
  const el: XmlElement = {
    tag: tag.name,
    prefix,
    local,
    ns: lookup(own, prefix),
    attrs: tag.attrs,
    children: [],
    text: "",
    closed: tag.selfClosing,
  };
  return { el, scope: own };
}

/** Parses as much of `buf` as forms XML; never throws. */
export function parseXml(buf: Uint8Array, maxDepth = GSOAP_MAXLEVEL): XmlDoc {
  const doc: XmlDoc = { root: null, complete: false, end: 0, tooDeep: false, sawMarkup: false };
  const stack: Array<{ el: XmlElement; scope: Scope }> = [];
  const appendText = (s: string) => {
    const top = stack[stack.length - 1];
    if (top && top.el.children.length === 0) top.el.text += s;
  };
  let i = 0;
  while (i < buf.length) {
    const lt = buf.indexOf(LT, i);
    if (lt === -1) {
      if (stack.length) appendText(decodeEntities(utf8.decode(buf.subarray(i))));
      return doc;
    }
    if (lt > i && stack.length) appendText(decodeEntities(utf8.decode(buf.subarray(i, lt))));
    doc.sawMarkup = true;
    let k = lt + 1;
    while (k < buf.length && isBlank(buf[k])) k++;
    if (k >= buf.length) return doc;
    const c = buf[k];
    if (c === BANG && startsWith(buf, k, "![CDATA[")) {
      const e = indexOfSeq(buf, k + 8, "]]>");
      if (e === -1) return doc;
      appendText(utf8.decode(buf.subarray(k + 8, e)));
      i = e + 3;
      continue;
    }
    if (c === BANG || c === QMARK) {
      const next = skipMarkupDecl(buf, lt);
      if (next === -1) return doc;
      i = next;
      continue;
    }
    if (c === SLASH) {
      const e = buf.indexOf(GT, k);
      if (e === -1) return doc;
      i = e + 1;
      const top = stack.pop();
      if (!top) continue; // stray end tag before the root: nothing to close
      top.el.closed = true;
      if (stack.length === 0) {
        doc.complete = true;
        doc.end = i;
        return doc;
      }
      continue;
    }
    const tag = readStartTag(buf, lt);
    if (!tag) return doc;
    if (stack.length >= maxDepth) {
      doc.tooDeep = true;
      return doc;
    }
    const parent = stack[stack.length - 1];
    const made = makeElement(tag, parent?.scope ?? null);
    if (parent) parent.el.children.push(made.el);
    else doc.root = made.el;
    i = tag.next;
    if (tag.selfClosing) {
      if (!parent) {
        doc.complete = true;
        doc.end = i;
        return doc;
      }
    } else {
      stack.push(made);
    }
  }
  return doc;
}

/** Cheap check used to frame header-less requests: does `buf` hold a complete root element? */
export function xmlRootEnd(buf: Uint8Array): number | null {
  const doc = parseXml(buf);
  if (doc.complete) return doc.end;
  return doc.tooDeep ? buf.length : null;
}

export function attr(el: XmlElement, name: string): string | undefined {
  for (const [n, v] of el.attrs) if (n === name) return v;
  return undefined;
}
