import { native } from './native';

const info = native.versionInfo;

/** The version of the libcurl linked at run time, e.g. '8.14.1'. */
export const libcurlVersion: string = info.version;

/** What the linked libcurl was built with (curl_version_info). */
export const libcurlFeatures = Object.freeze({
  version: info.version,
  versionNum: info.versionNum,
  host: info.host,
  /** TLS backend and version, e.g. 'OpenSSL/3.0.17', or null without TLS. */
  ssl: info.sslVersion,
  libz: info.libzVersion,
  ares: info.aresVersion,
  nghttp2: info.nghttp2Version,
  protocols: Object.freeze([...info.protocols]),
  features: Object.freeze([...info.featureNames]),
  http2: info.featureNames.includes('HTTP2'),
  http3: info.featureNames.includes('HTTP3'),
  asyncDns: info.featureNames.includes('AsynchDNS'),
  unixSockets: info.featureNames.includes('UnixSockets'),
  ipv6: info.featureNames.includes('IPv6'),
  threadsafe: info.featureNames.includes('threadsafe'),
});
