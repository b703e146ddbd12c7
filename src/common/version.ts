// The helper's version: `--version`, szClientAppVersion in the logon, and scripts/build.ts's check.
export const VERSION = "0.1.0";
