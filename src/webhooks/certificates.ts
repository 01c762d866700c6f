/**
 * The webhook server's certificates: a self-signed CA and a serving certificate generated in
 * memory when none is given (with `@peculiar/x509` over WebCrypto, imported only then: it costs
 * about 190 ms and 21 MB of RSS on first use — bench/admission_bench.ts measures it), or the PEM files
 * given, their private key decrypted with the password if it is encrypted.
 *
 * @module
 */

/** A serving certificate, its key, and the CA bundle that verifies it (all PEM). */
export interface CertificateSet {
  /** The serving certificate (with its chain, if any). */
  readonly certPem: string;
  /** Its private key, unencrypted (PKCS#8 or as given). */
  readonly keyPem: string;
  /** The CA bundle for the webhook configurations' `caBundle`. */
  readonly caPem: string;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Whether `host` is an IP address (v4, or v6 possibly in brackets). */
export function isIpAddress(host: string): boolean {
  return IPV4.test(host) || host.replace(/^\[|\]$/g, "").includes(":");
}

/** An address that can be bound to but not reached (`0.0.0.0`, `::`). */
export function isUnspecified(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "0.0.0.0" || /^[0:]+$/.test(bare) && bare.includes(":");
}

/**
 * The subject alternative names of a generated certificate, Kopf's way: every hostname given,
 * IP addresses as IP entries and names as DNS entries, deduplicated, without the unspecified
 * addresses (which nobody connects to); the first name (else the first IP) is the common name.
 *
 * @example
 * ```ts
 * import { certificateNames } from "./certificates.ts";
 * certificateNames(["localhost", "0.0.0.0", "127.0.0.1", "localhost"]);
 * // { commonName: "localhost", dns: ["localhost"], ips: ["127.0.0.1"] }
 * ```
 */
export function certificateNames(
  hostnames: readonly string[],
): { commonName: string; dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const raw of hostnames) {
    const host = raw.replace(/^\[|\]$/g, "");
    if (!host || isUnspecified(host)) continue;
    const list = isIpAddress(host) ? ips : dns;
    if (!list.includes(host)) list.push(host);
  }
  const commonName = dns[0] ?? ips[0] ?? "localhost";
  return { commonName, dns, ips };
}

/** `@peculiar/x509` needs the Reflect metadata polyfill loaded before it. */
async function loadX509(): Promise<typeof import("@peculiar/x509")> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(crypto);
  return x509;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

function serial(): string {
  // Positive 16-byte serial numbers (the top bit clear), as RFC 5280 asks.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A self-signed CA and a serving certificate it signs for `hostnames` (ECDSA P-256, valid for a
 * year from an hour ago), all in memory. The CA's private key is dropped: nothing else is ever
 * signed with it.
 *
 * @example
 * ```ts
 * import { generateCertificates } from "./certificates.ts";
 * const { certPem, keyPem, caPem } = await generateCertificates(["localhost", "127.0.0.1"]);
 * // Deno.serve({ cert: certPem, key: keyPem }, …); the API server trusts caPem.
 * ```
 */
export async function generateCertificates(hostnames: readonly string[]): Promise<CertificateSet> {
  const x509 = await loadX509();
  const names = certificateNames(hostnames);
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 365 * 86400_000);
  const usage = ["sign", "verify"] as KeyUsage[];
  const caKeys = await crypto.subtle.generateKey(ALGORITHM, false, usage);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Kopf webhook CA for ${names.commonName}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, usage);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names.commonName}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingKey: caKeys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: "dns" as const, value })),
        ...names.ips.map((value) => ({ type: "ip" as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: cert.toString("pem"),
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
    caPem: ca.toString("pem"),
  };
}

/**
 * A private key as Deno's TLS server takes it: an encrypted PEM key is decrypted with
 * `password` (by `node:crypto`); an unencrypted one is returned as it is.
 */
export async function decryptedKey(pem: string, password?: string): Promise<string> {
  if (!/ENCRYPTED/.test(pem)) return pem;
  if (password === undefined) {
    throw new TypeError("the private key is encrypted, but no password is given");
  }
  const { createPrivateKey } = await import("node:crypto");
  try {
    return String(
      createPrivateKey({ key: pem, passphrase: password }).export({
        format: "pem",
        type: "pkcs8",
      }),
    );
  } catch (error) {
    throw new TypeError(
      `the private key cannot be decrypted with the password given: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

/** Whether `text` holds at least one PEM certificate. */
export function hasCertificate(text: string): boolean {
  return /-----BEGIN CERTIFICATE-----/.test(text);
}
