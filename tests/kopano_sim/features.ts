// The server-side merge of `disabled_features` with a user's explicit feature lists
// (ECUserManagement ComplementDefaultFeatures,
// docs/kopano.md#4-getuser-the-feature-lists-and-logoff). Clients only ever see the result.

const utf8 = new TextEncoder();

/** std::set<std::string> order: byte-wise on the UTF-8 encoding. */
function byteCompare(a: string, b: string): number {
  const x = utf8.encode(a), y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

export interface FeatureLists {
  enabled: string[];
  disabled: string[];
}

/**
 * 1. enabled = every feature the release knows, minus the configured disabled tokens;
 *    disabled = the configured tokens (unknown names included).
 * 2. each explicitly enabled name moves to enabled;
 * 3. then each explicitly disabled name moves to disabled (disable beats enable).
 * Both results are sorted, de-duplicated, case-sensitive sets.
 */
export function mergeFeatures(
  known: readonly string[],
  disabledFeatures: string,
  userEnabled: readonly string[] = [],
  userDisabled: readonly string[] = [],
): FeatureLists {
  const disabled = new Set(disabledFeatures.split(/[ \t]+/).filter((t) => t !== ""));
  const enabled = new Set(known.filter((f) => !disabled.has(f)));
  for (const f of userEnabled) {
    disabled.delete(f);
    enabled.add(f);
  }
  for (const f of userDisabled) {
    enabled.delete(f);
    disabled.add(f);
  }
  return {
    enabled: [...enabled].sort(byteCompare),
    disabled: [...disabled].sort(byteCompare),
  };
}
