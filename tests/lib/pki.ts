// Throw-away certificate authority for TLS tests: a CA, a server certificate for localhost and
// 127.0.0.1 signed by it, and a second, unrelated CA (to show that an unknown issuer is refused).
// Made with the openssl command line; nothing here is used outside tests.

export interface TestPki {
  dir: string;
  /** PEM of the CA that signed the server certificate. */
  caFile: string;
  /** PEM of a CA that signed nothing we serve. */
  otherCaFile: string;
  /** Server certificate (SAN DNS:localhost, IP:127.0.0.1, IP:::1) and its key. */
  certFile: string;
  keyFile: string;
  /** Same CA, but the certificate names only "wrong.example" (host-name check). */
  wrongNameCertFile: string;
  wrongNameKeyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (out.code !== 0) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ], dir);
}

async function makeLeaf(dir: string, ca: string, name: string, san: string): Promise<void> {
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  ], dir);
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ], dir);
}

/** Creates a fresh PKI in a new temporary directory (remove `dir` when done). */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_pki_" });
  await makeCa(dir, "ca");
  await makeCa(dir, "other-ca");
  await makeLeaf(dir, "ca", "server", "DNS:localhost,IP:127.0.0.1,IP:::1");
  await makeLeaf(dir, "ca", "wrong-name", "DNS:wrong.example");
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    otherCaFile: `${dir}/other-ca.pem`,
    certFile: `${dir}/server.pem`,
    keyFile: `${dir}/server.key`,
    wrongNameCertFile: `${dir}/wrong-name.pem`,
    wrongNameKeyFile: `${dir}/wrong-name.key`,
  };
}
