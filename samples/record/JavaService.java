// A service using the real ZooKeeper Java client (Debian's zookeeper.jar), so its log carries
// genuine ClientCnxn lines: session establishment, timeouts, reconnects, expiry.
// It registers an ephemeral /services/<name>/<instance>, writes /data/<name>/counter twice a
// second logging the session id and mzxid, and on expiry opens a new session and re-registers.
// On SIGTERM it closes its session (a clean closeSession, its ephemeral goes at once); when its
// parent (the recording script) dies, it exits too.
//
// Compiled and run by record.sh:
//   javac -implicit:none -cp /usr/share/java/zookeeper.jar -d OUT JavaService.java
//   java -Dservice.log=LOG -cp OUT:CONF:zookeeper.jar:slf4j-log4j12.jar:log4j-1.2.jar \
//        JavaService <connect> <name> <instance> <timeoutMs>
// (CONF holds its log4j.properties; zookeeper.jar's manifest brings slf4j-api, jute, netty.)
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class JavaService implements Watcher {
    private static final Logger LOG = LoggerFactory.getLogger(JavaService.class);
    private final String connect, name, instance;
    private final int timeout;
    private volatile ZooKeeper zk;
    private volatile boolean expired;
    private volatile boolean stopping;
    private volatile CountDownLatch connected = new CountDownLatch(1);

    JavaService(String connect, String name, String instance, int timeout) {
        this.connect = connect;
        this.name = name;
        this.instance = instance;
        this.timeout = timeout;
    }

    @Override
    public void process(WatchedEvent e) {
        // WatchedEvent.toString(): "WatchedEvent state:Expired type:None path:null"
        String sid = zk == null ? "0x0" : "0x" + Long.toHexString(zk.getSessionId());
        switch (e.getState()) {
            case SyncConnected:
                LOG.info("watcher got {} for session {}", e, sid);
                connected.countDown();
                break;
            case Disconnected:
                LOG.warn("watcher got {} for session {}", e, sid);
                break;
            case Expired:
                LOG.warn("watcher got {} for session {}", e, sid);
                expired = true;
                break;
            default:
                LOG.info("watcher got {} for session {}", e, sid);
        }
    }

    private void open() throws Exception {
        connected = new CountDownLatch(1);
        expired = false;
        zk = new ZooKeeper(connect, timeout, this);
        if (!connected.await(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection within 30 s");
        }
        ensure("/services");
        ensure("/services/" + name);
        ensure("/data");
        ensure("/data/" + name);
        ensure("/data/" + name + "/counter");
        String me = "/services/" + name + "/" + instance;
        String data = "{\"service\":\"" + name + "\",\"instance\":\"" + instance
            + "\",\"host\":\"127.0.0.1\",\"logs\":[{\"url\":\"file://" + System.getProperty("service.log")
            + "\",\"format\":\"zookeeper-log4j\"}]}";
        try {
            zk.delete(me, -1);
        } catch (KeeperException.NoNodeException ignored) {
            // not there: fine
        }
        zk.create(me, data.getBytes(StandardCharsets.UTF_8), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        LOG.info("registered ephemeral znode {} session 0x{}", me, Long.toHexString(zk.getSessionId()));
    }

    private void ensure(String path) throws Exception {
        try {
            zk.create(path, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        } catch (KeeperException.NodeExistsException ignored) {
            // already there
        }
    }

    void run() throws Exception {
        final Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            main.interrupt();
            try {
                main.join(3000);
                ZooKeeper z = zk;
                if (z != null) {
                    LOG.info("shutting down, closing session 0x{}", Long.toHexString(z.getSessionId()));
                    z.close(2000);
                }
            } catch (InterruptedException ignored) {
                // exiting anyway
            }
        }, "shutdown"));
        // When the recording script dies, so does this service (no stray JVMs).
        final ProcessHandle parent = ProcessHandle.current().parent().orElse(null);
        Thread watch = new Thread(() -> {
            while (parent != null && parent.isAlive()) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
            LOG.warn("parent process gone, stopping");
            System.exit(0);
        }, "parent-watch");
        watch.setDaemon(true);
        watch.start();
        open();
        long n = 0;
        while (!stopping) {
            if (expired) {
                LOG.warn("session expired, opening a new session");
                try {
                    zk.close();
                } catch (InterruptedException ignored) {
                    // closing anyway
                }
                open();
                LOG.info("re-registered after session expiry, new session 0x{}", Long.toHexString(zk.getSessionId()));
            }
            try {
                n++;
                Stat st = zk.setData("/data/" + name + "/counter", Long.toString(n).getBytes(StandardCharsets.UTF_8), -1);
                LOG.info("wrote /data/{}/counter version={} mzxid=0x{} session 0x{}", name, st.getVersion(),
                    Long.toHexString(st.getMzxid()), Long.toHexString(zk.getSessionId()));
                Thread.sleep(500);
            } catch (KeeperException e) {
                LOG.warn("write failed: {}", e.code());
                Thread.sleep(500);
            } catch (InterruptedException e) {
                break;
            }
        }
    }

    public static void main(String[] a) throws Exception {
        new JavaService(a[0], a[1], a[2], Integer.parseInt(a[3])).run();
    }
}
