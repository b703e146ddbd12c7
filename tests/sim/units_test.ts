// Unit tests of the sim's pieces that decide how lenient it is: the XML reader, the request
// decoder, the reply writer, version parsing and address parsing.

import assert from "node:assert/strict";
import { escapeText, XmlOut } from "../kopano_sim/envelope.ts";
import { clientGeneral } from "../kopano_sim/methods.ts";
import { parseHostPort, serverProfile } from "../kopano_sim/mod.ts";
import { decodeRequest, parseUnsigned } from "../kopano_sim/soap_request.ts";
import { parseXml, xmlRootEnd } from "../kopano_sim/xml.ts";
import { exchange } from "../lib/captures.ts";
import { envelope, logon } from "./lib/soap.ts";

const enc = new TextEncoder();
const P11 = serverProfile("11.0.2");

Deno.test("xml: an end tag closes the innermost element whatever its name (gSOAP non-strict)", () => {
  const doc = parseXml(enc.encode("<a><b>1</c><d>2</d></x>"));
  assert.ok(doc.complete);
  assert.deepEqual(doc.root!.children.map((e) => [e.tag, e.text, e.closed]), [["b", "1", true], [
    "d",
    "2",
    true,
  ]]);
});

Deno.test("xml: truncated input says where it stopped", () => {
  const doc = parseXml(enc.encode("<a><b>1</b><c>par"));
  assert.equal(doc.complete, false);
  assert.deepEqual(doc.root!.children.map((e) => [e.tag, e.closed]), [["b", true], ["c", false]]);
  assert.equal(doc.root!.closed, false);
  assert.equal(parseXml(enc.encode("<a attr='x")).root, null, "inside the first tag");
  assert.equal(parseXml(enc.encode("no markup")).sawMarkup, false);
});

Deno.test("xml: namespaces, entities, CDATA, comments, PIs, DOCTYPE without expansion", () => {
  const doc = parseXml(enc.encode(
    `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><!-- c --><p:a xmlns:p="urn:p" xmlns="urn:d">` +
      `<b>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;&e;<![CDATA[<raw>]]></b><q:c xmlns:q="urn:q"/><d xmlns=""/><z:e/></p:a>`,
  ));
  const [b, c, d, e] = doc.root!.children;
  assert.equal(doc.root!.ns, "urn:p");
  assert.equal(b.ns, "urn:d");
  assert.equal(b.text, `<&>"'AB\uFFFD<raw>`, "unknown entities are not expanded");
  assert.deepEqual([c.ns, c.closed], ["urn:q", true]);
  assert.equal(d.ns, null);
  assert.equal(e.ns, undefined, "undeclared prefix");
});

Deno.test("xml: the value is the text before the first child element", () => {
  const doc = parseXml(enc.encode("<a>12<b/>34</a>"));
  assert.equal(doc.root!.text, "12");
});

Deno.test("xml: nesting deeper than 10 000 stops the parse", () => {
  assert.equal(parseXml(enc.encode("<a>".repeat(10_000) + "</a>".repeat(10_000))).tooDeep, false);
  assert.equal(parseXml(enc.encode("<a>".repeat(10_001))).tooDeep, true);
});

Deno.test("xml: xmlRootEnd frames header-less requests (pipelined data stays)", () => {
  const one = enc.encode(logon());
  const two = new Uint8Array([...one, ...enc.encode("<next/>")]);
  assert.equal(xmlRootEnd(two), one.length);
  assert.equal(xmlRootEnd(one.subarray(0, 500)), null);
  assert.equal(xmlRootEnd(enc.encode("<a/>")), 4);
});

Deno.test("decode: the fixtures' malformed requests (d1-d5)", () => {
  const body = (name: string) => exchange("11.0.2", name).request.body;
  const d1 = decodeRequest(body("d1_unknown_method_logonBogus"), P11, true).decoded;
  assert.equal(
    d1.kind === "fault" && d1.fault.text,
    "Method 'ns:logonBogus' not implemented: method name or namespace not recognized",
  );
  assert.equal(decodeRequest(body("d2_malformed_truncated_xml"), P11, true).decoded.kind, "drop");
  const d3 = decodeRequest(body("d3_body_not_xml"), P11, true).decoded;
  assert.equal(d3.kind === "fault" && d3.fault.text, "HTTP method error");
  const d4 = decodeRequest(body("d4_mismatched_tags"), P11, true);
  assert.equal(d4.decoded.kind, "call");
  assert.deepEqual(d4.info, {
    method: "logon",
    params: { szUsername: "alice" },
    elements: ["szUsername"],
  });
  const d5 = decodeRequest(body("d5_getUser_sessionid_not_a_number"), P11, true).decoded;
  assert.equal(
    d5.kind === "fault" && d5.fault.text,
    "Validation constraint violation: invalid value in element 'ulSessionId'",
  );
});

Deno.test("decode: header-less garbage is dropped, a parameter error wins over a later truncation", () => {
  assert.equal(decodeRequest(enc.encode("<a"), P11, false).decoded.kind, "drop");
  const bad = logon().replace("<ulCapabilities>528", "<ulCapabilities>x");
  const d = decodeRequest(enc.encode(bad.slice(0, -40)), P11, true).decoded;
  assert.equal(d.kind, "fault");
});

Deno.test("decode: parameters unknown to the emulated version are ignored, not validated", () => {
  const body = enc.encode(envelope(
    "<ns:logon><szUsername>a</szUsername><ulFlags>bogus</ulFlags><szImpersonateUser>x</szImpersonateUser></ns:logon>",
  ));
  const old = decodeRequest(body, serverProfile("7.1.0"), true).decoded;
  assert.equal(old.kind, "call");
  assert.ok(
    old.kind === "call" && !("ulFlags" in old.call.args) && !("szImpersonateUser" in old.call.args),
  );
  assert.equal(decodeRequest(body, P11, true).decoded.kind, "fault");
});

Deno.test("numbers: gSOAP's unsigned parsing", () => {
  assert.equal(parseUnsigned(" 42 ", 32), 42n);
  assert.equal(parseUnsigned("+42", 32), 42n);
  assert.equal(parseUnsigned("-0", 32), 0n);
  assert.equal(parseUnsigned("4294967295", 32), 4294967295n);
  for (const bad of ["", "-1", "0x10", "4294967296", "1 2", "1e3"]) {
    assert.equal(parseUnsigned(bad, 32), null, bad);
  }
  assert.equal(parseUnsigned("18446744073709551615", 64), 18446744073709551615n);
  assert.equal(parseUnsigned("18446744073709551616", 64), null);
});

Deno.test("writer: gSOAP 2.8 and 2.7 serialisation details", () => {
  assert.equal(escapeText(`a&b<c>d"e'f\ng\th\x01`), `a&amp;b&lt;c&gt;d"e'f&#xA;g\th&#1;`);
  assert.equal(
    new XmlOut("2.8").str("x", "").str("y", null).b64("z", new Uint8Array()).toString(),
    "<x/><z></z>",
  );
  assert.equal(new XmlOut("2.7").str("x", "").toString(), "<x></x>");
  assert.equal(
    new XmlOut("2.7").strArray("v", ["a"]).toString(),
    '<v xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="xsd:string[1]"><item>a</item></v>',
  );
});

Deno.test("client versions: ParseKopanoVersion semantics", () => {
  assert.equal(clientGeneral("11.0.2"), null, "dotted does not parse");
  assert.equal(clientGeneral("0,11,0,2"), 11);
  assert.equal(clientGeneral("7,2,0,48204"), 7);
  assert.equal(clientGeneral("5,0,0"), 5);
  assert.equal(clientGeneral("5,0"), null);
  assert.equal(clientGeneral("5,0,0x"), null);
  assert.equal(clientGeneral("262,0,0"), 6, "the general part is one byte");
  assert.equal(clientGeneral(null), null);
});

Deno.test("addresses: HOST:PORT forms", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:236"), { hostname: "127.0.0.1", port: 236 });
  assert.deepEqual(parseHostPort("[::1]:0"), { hostname: "::1", port: 0 });
  assert.deepEqual(parseHostPort(":0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseHostPort("8080"), { hostname: "127.0.0.1", port: 8080 });
  for (const bad of ["host", "h:99999", "h:x"]) assert.throws(() => parseHostPort(bad));
});
