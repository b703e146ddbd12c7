// Relative links in Markdown, and whether each leads somewhere: the file or directory exists, and
// an `#anchor` names a heading of the Markdown file it points into, spelled as GitHub spells a
// heading's anchor. Links to other sites (`https:`, `mailto:`) are not followed.

/** One link that does not resolve, for the failure message. */
export interface BrokenLink {
  file: string;
  line: number;
  target: string;
  why: string;
}

/** The text of a file relative to the checkout, or null when there is none. */
export type Reader = (path: string) => string | null;
/** Whether a path relative to the checkout exists (file or directory). */
export type Exists = (path: string) => boolean;

/** The Markdown with fenced code blocks and inline code blanked out, line numbers kept. */
function prose(markdown: string): string {
  let fence: string | null = null;
  return markdown.split("\n").map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      return "";
    }
    if (m) {
      fence = m[1];
      return "";
    }
    return line.replace(/(`+)[^`]*?\1/g, "");
  }).join("\n");
}

/**
 * The anchor GitHub gives a heading: its text as rendered (code spans, link targets and emphasis
 * markers gone), lower case, everything but letters, digits, spaces, `-` and `_` dropped, spaces
 * made `-`; a repeated one gets `-1`, `-2`, ...
 */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence: string | null = null;
  for (const line of markdown.split("\n")) {
    const f = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null;
      continue;
    }
    if (f) {
      fence = f[1];
      continue;
    }
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const text = h[1]
      .replace(/`([^`]*)`/g, "$1")
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/[*]/g, "")
      .replace(/<[^>]+>/g, "");
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** `a/b/../c` → `a/c`; null when it climbs out of the checkout. */
function normalise(path: string): string | null {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) return null;
      parts.pop();
    } else {
      parts.push(p);
    }
  }
  return parts.join("/");
}

/** The links of `file` (relative to the checkout) that do not resolve. */
export function brokenLinks(file: string, read: Reader, exists: Exists): BrokenLink[] {
  const text = read(file);
  if (text === null) return [{ file, line: 0, target: file, why: "no such file" }];
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
  const broken: BrokenLink[] = [];
  const lines = prose(text).split("\n");
  // Inline links and images [text](target "title"), and reference definitions [id]: target.
  const patterns = [
    /!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
    /^\s*\[[^\]]+\]:\s*(\S+)/g,
  ];
  lines.forEach((line, i) => {
    for (const re of patterns) {
      for (const m of line.matchAll(re)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
        const why = check(target);
        if (why !== null) broken.push({ file, line: i + 1, target, why });
      }
    }
  });
  return broken;

  function check(target: string): string | null {
    const hash = target.indexOf("#");
    const pathPart = decodeURI(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
    const path = pathPart === "" ? file : normalise(dir === "" ? pathPart : `${dir}/${pathPart}`);
    if (path === null) return "leads out of the checkout";
    if (path !== "" && !exists(path)) return "no such file or directory";
    if (anchor === null) return null;
    if (!path.endsWith(".md")) return "an anchor into a file that is not Markdown";
    const into = read(path);
    if (into === null) return "an anchor into a directory";
    return anchors(into).has(anchor) ? null : `no heading with the anchor #${anchor}`;
  }
}
