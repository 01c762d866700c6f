/**
 * What kind of local cluster the API server is, for `WebhookAutoServer` (Kopf's
 * `ClusterDetector`): K3d/K3s, Minikube and Docker Desktop reach their host by magic hostnames.
 * The API server's own certificate tells (its subject, issuer and names), read in a TLS
 * handshake that needs no credentials; else its version (`+k3s`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ClusterInfo } from "../storage/reviews.ts";

const logger = getLogger(["kopf", "webhooks"]);

/** The hostname by which K3d/K3s clusters reach their host. */
export const K3D_HOST = "host.k3d.internal";
/** The hostname by which Minikube clusters reach their host. */
export const MINIKUBE_HOST = "host.minikube.internal";
/** The hostname by which Docker Desktop's cluster reaches its host. */
export const DOCKER_DESKTOP_HOST = "host.docker.internal";

/** What the API server's certificate says, as the detection reads it. */
export interface ServerCertificate {
  /** The subject's common name. */
  readonly subjectCN?: string;
  /** The subject's organization. */
  readonly subjectO?: string;
  /** The issuer's common name. */
  readonly issuerCN?: string;
  /** The subject alternative names (DNS and IP values). */
  readonly names?: readonly string[];
}

/**
 * The magic hostname for a cluster whose API server presents this certificate, Kopf's rules:
 * K3s (subject or organization `k3s`, issuer `k3s-…`), Minikube (subject `minikube`, issuer
 * `minikubeCA`), Docker Desktop (the name `docker-for-desktop`).
 *
 * @example
 * ```ts
 * import { hostFromCertificate } from "./detection.ts";
 * hostFromCertificate({ subjectCN: "minikube", issuerCN: "minikubeCA" });
 * // "host.minikube.internal"
 * ```
 */
export function hostFromCertificate(cert: ServerCertificate): string | undefined {
  const { subjectCN = "", subjectO = "", issuerCN = "", names = [] } = cert;
  if (subjectCN === "k3s" || subjectO === "k3s" || issuerCN.startsWith("k3s-")) return K3D_HOST;
  if (subjectCN === "minikube" || issuerCN === "minikubeCA") return MINIKUBE_HOST;
  if (names.includes("docker-for-desktop")) return DOCKER_DESKTOP_HOST;
  return undefined;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The API server's certificate, read in a TLS handshake (no request is made). */
async function readServerCertificate(server: string): Promise<ServerCertificate | undefined> {
  const url = new URL(server);
  if (url.protocol !== "https:") return undefined;
  const tls = await import("node:tls");
  const port = Number(url.port || 443);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return await new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port,
      // Only looking: the certificate is not trusted for anything.
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
    }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(
        cert && cert.subject
          ? {
            subjectCN: first(cert.subject.CN),
            subjectO: first(cert.subject.O),
            issuerCN: first(cert.issuer?.CN),
            names: (cert.subjectaltname ?? "").split(/,\s*/).map((n: string) =>
              n.slice(n.indexOf(":") + 1)
            ),
          }
          : undefined,
      );
    });
    socket.setTimeout(10_000, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on("error", () => resolve(undefined));
  });
}

/**
 * The magic hostname of the cluster, if it is K3d/K3s, Minikube or Docker Desktop; `undefined`
 * for any other (then the webhook server is reached as it listens).
 */
export async function guessHost(cluster: ClusterInfo): Promise<string | undefined> {
  const cert = await readServerCertificate(cluster.server).catch((error) => {
    logger.debug("The API server's certificate could not be read: {error}", { error });
    return undefined;
  });
  const byCert = cert && hostFromCertificate(cert);
  if (byCert) return byCert;
  try {
    const version = await cluster.version();
    if (String(version.gitVersion ?? "").includes("+k3s")) return K3D_HOST;
  } catch (error) {
    logger.debug("The API server's version could not be read: {error}", { error });
  }
  return undefined;
}
