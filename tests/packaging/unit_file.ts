// Reading pam_mapi.service (the repository's, or the one a package installed).

/** The values of a setting in a unit file, in order (a setting may be given more than once). */
export function unitSettings(unitText: string, name: string): string[] {
  return unitText.split("\n").filter((l) => l.startsWith(`${name}=`)).map((l) =>
    l.slice(name.length + 1).trim()
  );
}
