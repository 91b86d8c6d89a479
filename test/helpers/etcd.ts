// etcd for the high-availability tests: the cluster launcher (lib/etcd-cluster.ts) and the
// skip rule (skipped locally without etcd, a failure under CI=true).

import { have, skipUnless } from './tools.js';

export { startEtcdCluster, type EtcdCluster, type EtcdMember } from '../../lib/etcd-cluster.js';

/** The reason to skip, or false: etcd (Debian etcd-server) and etcdctl (etcd-client) on the PATH. */
export const skipEtcd = (): string | false =>
  skipUnless(
    have('etcd', ['--version']) && have('etcdctl', ['version']),
    'etcd (Debian etcd-server, etcd-client)',
  );
