// A small, strict XML reader for SOAP replies. Written for this job instead of using a general
// parser because (a) loading fast-xml-parser costs about 7 ms of start-up on every login, and
// (b) a hostile server must fail closed fast with bounded memory: no DTD, no entity expansion, a
// hard nesting limit and element count, and any well-formedness error is an error, never a guess.
//
// What it keeps: element local names (prefixes dropped), child order and the concatenated text of
// each element. Attributes are checked for balanced quotes and otherwise ignored.

export interface XmlElement {
  /** Local name: the part after the last ':' of the tag name. */
  name: string;
  children: XmlElement[];
  /** Character data directly inside this element, entity references decoded. */
  text: string;
}

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "XmlError";
  }
}

export interface XmlLimits {
  /** Deepest allowed element nesting (the root is depth 1). */
  maxDepth: number;
  /** Most elements, comments, processing instructions and CDATA sections in one document. */
  maxElements: number;
  /** Most entity and character references in one document. */
  maxReferences: number;
}

// SOAP replies on the logon path are 3 to 6 levels deep and hold a few dozen elements and hardly
// a reference ("&amp;" in a display name). The limits bound the work a hostile reply can cause:
// a reference costs a call, a markup node a turn of the loop below.
export const DEFAULT_LIMITS: XmlLimits = { maxDepth: 64, maxElements: 4096, maxReferences: 4096 };

const PREDEFINED: Record<string, string> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

// XML 1.0 Char production; everything else is not allowed in a document.
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

// Characters XML 1.0 forbids (C0 controls other than tab/LF/CR, U+FFFE/U+FFFF); lone surrogates
// are caught by isWellFormed().
// deno-lint-ignore no-control-regex
const FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;
const NAME = /^[A-Za-z_][A-Za-z0-9._:-]*$/;
/**
 * The rest of a start tag after its name: text without quotes or angle brackets, and quoted
 * values without '<'. One regular expression, not a loop over characters: several times faster
 * (V8 runs it as byte code even without a JIT), and it cannot backtrack (nothing follows it).
 */
const TAG_REST = /(?:[^"'<>]+|"[^"<]*"|'[^'<]*')*/y;

const REFERENCE = /&([^;&<]{0,12});?/y;

/**
 * Decodes the references in `raw`, counting them in `budget` (throws when it runs out). A loop
 * that stops at the limit, not String.replace: V8 finds every match of a global pattern before
 * the first callback, so a megabyte of references would be worked through before any count.
 */
function decodeText(raw: string, budget: { references: number }): string {
  let amp = raw.indexOf("&");
  if (amp < 0) return raw;
  let out = "";
  let from = 0;
  while (amp >= 0) {
    if (--budget.references < 0) throw new XmlError("too many entity references");
    REFERENCE.lastIndex = amp;
    const [whole, ref] = REFERENCE.exec(raw)!;
    out += raw.slice(from, amp) + resolveReference(whole, ref);
    from = amp + whole.length;
    amp = raw.indexOf("&", from);
  }
  return out + raw.slice(from);
}

function resolveReference(whole: string, ref: string): string {
  if (!whole.endsWith(";")) throw new XmlError("unterminated entity reference");
  if (ref in PREDEFINED) return PREDEFINED[ref];
  let cp = NaN;
  if (/^#[0-9]{1,7}$/.test(ref)) cp = Number(ref.slice(1));
  else if (/^#x[0-9A-Fa-f]{1,6}$/.test(ref)) cp = parseInt(ref.slice(2), 16);
  // Named entities would need a DTD; SOAP forbids DTDs, so an unknown name is an error.
  if (Number.isNaN(cp)) throw new XmlError("undefined entity reference");
  if (!isXmlChar(cp)) throw new XmlError("character reference to a forbidden character");
  return String.fromCodePoint(cp);
}

/** Parses one XML document; throws XmlError on anything that is not well-formed or over a limit. */
export function parseXml(doc: string, limits: XmlLimits = DEFAULT_LIMITS): XmlElement {
  if (FORBIDDEN.test(doc) || !doc.isWellFormed()) {
    throw new XmlError("forbidden character in document");
  }
  let i = doc.charCodeAt(0) === 0xfeff ? 1 : 0;
  const stack: { qname: string; el: XmlElement; text: string[] }[] = [];
  let root: XmlElement | null = null;
  let count = 0;
  const budget = { references: limits.maxReferences };
  const node = () => {
    if (++count > limits.maxElements) throw new XmlError("too many elements");
  };

  const expect = (end: string, what: string): number => {
    const j = doc.indexOf(end, i);
    if (j < 0) throw new XmlError(`unterminated ${what}`);
    return j;
  };

  while (i < doc.length) {
    const lt = doc.indexOf("<", i);
    const textEnd = lt < 0 ? doc.length : lt;
    if (textEnd > i) {
      const raw = doc.slice(i, textEnd);
      if (stack.length === 0) {
        if (raw.trim() !== "") throw new XmlError("text outside the root element");
      } else {
        if (raw.includes("]]>")) throw new XmlError("']]>' in character data");
        stack[stack.length - 1].text.push(decodeText(raw, budget));
      }
    }
    if (lt < 0) break;
    i = lt;
    if (doc.startsWith("<?", i)) {
      node();
      i = expect("?>", "processing instruction") + 2;
    } else if (doc.startsWith("<!--", i)) {
      node();
      i = expect("-->", "comment") + 3;
    } else if (doc.startsWith("<![CDATA[", i)) {
      node();
      if (stack.length === 0) throw new XmlError("CDATA outside the root element");
      const j = expect("]]>", "CDATA section");
      stack[stack.length - 1].text.push(doc.slice(i + 9, j));
      i = j + 3;
    } else if (doc.startsWith("<!", i)) {
      // <!DOCTYPE, <!ENTITY and friends: SOAP forbids them, and they are how entity bombs work.
      throw new XmlError("DTD or declaration in a SOAP message");
    } else if (doc.startsWith("</", i)) {
      const j = expect(">", "end tag");
      const qname = doc.slice(i + 2, j).trimEnd();
      const top = stack.pop();
      if (!top || top.qname !== qname) throw new XmlError("mismatched end tag");
      top.el.text = top.text.join("");
      i = j + 1;
    } else {
      // Start tag: the name, then attributes whose quoted values may hold '>' or '/'.
      let j = i + 1;
      while (j < doc.length && !/[\s/>]/.test(doc[j])) j++;
      const qname = doc.slice(i + 1, j);
      if (!NAME.test(qname)) throw new XmlError("bad element name");
      TAG_REST.lastIndex = j;
      TAG_REST.exec(doc);
      j = TAG_REST.lastIndex;
      if (j >= doc.length || doc[j] !== ">") {
        throw new XmlError(
          doc[j] === '"' || doc[j] === "'"
            ? "'<' in attribute value or unterminated attribute value"
            : "unterminated start tag",
        );
      }
      const selfClosing = doc[j - 1] === "/";
      if (stack.length === 0 && root) throw new XmlError("more than one root element");
      node();
      const el: XmlElement = {
        name: qname.slice(qname.lastIndexOf(":") + 1),
        children: [],
        text: "",
      };
      if (stack.length === 0) root = el;
      else stack[stack.length - 1].el.children.push(el);
      if (!selfClosing) {
        if (stack.length + 1 > limits.maxDepth) throw new XmlError("elements nested too deeply");
        stack.push({ qname, el, text: [] });
      }
      i = j + 1;
    }
  }
  if (stack.length) throw new XmlError("document ends inside an element");
  if (!root) throw new XmlError("no root element");
  return root;
}

/** The first child element with this local name, or undefined. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}
