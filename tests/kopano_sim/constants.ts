// Wire constants of the Kopano/Zarafa SOAP protocol, as numbers appear on the wire (unsigned
// decimal). Values from docs/kopano.md (§2, §3, §4) and the fixtures.

/** KCERR_* / ZARAFA_E_* result codes (0x80000000 | n), plus the one MAPI code KC 10 used. */
export const KCERR = {
  NONE: 0,
  NOT_FOUND: 0x80000002, // 2147483650
  NO_ACCESS: 0x80000003, // 2147483651
  LOGON_FAILED: 0x80000009, // 2147483657
  END_OF_SESSION: 0x80000010, // 2147483664
  INVALID_PARAMETER: 0x80000014, // 2147483668
  INVALID_VERSION: 0x80000021, // 2147483681
  BAD_CHARWIDTH: 0x80000031, // 2147483697 (KC >= 11.0.2)
  MAPI_E_BAD_CHARWIDTH: 0x80040103, // 2147746051 (KC 10.0.3 - 11.0.1 put this in er)
} as const;

/** Client/server capability bits (KOPANO_CAP_* = ZARAFA_CAP_*). */
export const CAP = {
  COMPRESSION: 0x0001,
  MAILBOX_OWNER: 0x0002,
  CRYPT: 0x0008,
  LARGE_SESSIONID: 0x0010,
  LICENSE_SERVER: 0x0020,
  MULTI_SERVER: 0x0040,
  LOADPROP_ENTRYID: 0x0080,
  ENHANCED_ICS: 0x0100,
  UNICODE: 0x0200,
  MSGLOCK: 0x0400,
  EXPORT_PROPTAG: 0x0800,
  IMPERSONATION: 0x1000,
  MAX_ABCHANGEID: 0x2000,
  EXTENDED_ANON: 0x4000,
  GIFN32: 0x8000,
} as const;

/** logon ulFlags bits. */
export const LOGON_FLAG = {
  NO_UID_AUTH: 0x1, // skip UNIX-socket peer-credential logon (ZCP >= 7.1.1)
  NO_REGISTER_SESSION: 0x2, // check credentials only (KC >= 8.5.0)
} as const;

/** Property tags of the merged feature lists (PT_MV_STRING8), as getUser sends them. */
export const PROP_ENABLED_FEATURES = 0x67B3101E; // 1739788318
export const PROP_DISABLED_FEATURES = 0x67B4101E; // 1739853854

/** Object classes that appear in getUser replies. */
export const OBJCLASS_ACTIVE_USER = 0x10001; // 65537
export const OBJCLASS_NONACTIVE_USER = 0x10002; // 65538

/** MAPI object type of a mail user inside an address-book entry id. */
export const MAPI_MAILUSER = 6;

/** MUIDECSAB: the provider GUID at the start of every Kopano address-book entry id. */
export const MUIDECSAB = Uint8Array.from([
  0xAC,
  0x21,
  0xA9,
  0x50,
  0x40,
  0xD3,
  0xEE,
  0x48,
  0xB3,
  0x19,
  0xFB,
  0xA7,
  0x53,
  0x30,
  0x44,
  0x25,
]);

/** The urn the KCmd/ZarafaCmd service lives in (prefix "ns" on the wire). */
export const NS_ZARAFA = "urn:zarafa";
export const NS_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/";
export const NS_SOAP_ENV_12 = "http://www.w3.org/2003/05/soap-envelope";
export const NS_SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/";

/** The seven namespace declarations gSOAP puts on every envelope, in this order. */
export const ENVELOPE_NAMESPACES: ReadonlyArray<readonly [string, string]> = [
  ["SOAP-ENV", NS_SOAP_ENV],
  ["SOAP-ENC", NS_SOAP_ENC],
  ["xsi", "http://www.w3.org/2001/XMLSchema-instance"],
  ["xsd", "http://www.w3.org/2001/XMLSchema"],
  ["xop", "http://www.w3.org/2004/08/xop/include"],
  ["xmlmime", "http://www.w3.org/2004/11/xmlmime"],
  ["ns", NS_ZARAFA],
];

/** The built-in account that can never log on with a password. */
export const SYSTEM_USER = "SYSTEM";
export const SYSTEM_USER_ID = 1;
