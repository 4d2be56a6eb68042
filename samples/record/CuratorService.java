// A service on Apache Curator 5.4 (Debian's libcurator-*-java over Debian's zookeeper.jar 3.8),
// logging through logback 1.2 (Debian's liblogback-java), for samples/incident-2:
//
// - registers an EPHEMERAL /services/<name>/<instance> whose data names its log, and registers
//   again after a session expiry (Curator reconnects with a new session by itself);
// - takes part in an election under /election/<name> with Curator's LeaderLatch (its nodes are
//   `_c_<uuid>-latch-NNNNNNNNNN`: protected ephemeral sequentials whose data is the instance) and
//   logs every role change ("role change: standby -> primary (session 0x...)");
// - thread "zk worker 1" writes /data/<name>/counter twice a second (logging the session and the
//   mzxid), thread "zk worker 2" lists /services every 2 s; the latch listener runs on the thread
//   "leader latch listener": thread names with spaces, as the layout's %thread shows them.
//   Curator's and the ZooKeeper client's own threads (main-SendThread(...), main-EventThread,
//   Curator-ConnectionStateManager-0, ...) log to the same file.
// On SIGTERM it closes the latch and the client (a clean closeSession); when its parent (the
// recording script) dies, it exits too.
//
// Compiled and run by record-incident-2.py:
//   javac -implicit:none -cp /usr/share/java/curator-recipes.jar -d OUT CuratorService.java
//   java -Dlogback.configurationFile=LOGBACK_XML -Dservice.log=LOG \
//        -cp OUT:/usr/share/java/curator-recipes.jar:/usr/share/java/logback-classic.jar:/usr/share/java/logback-core.jar \
//        CuratorService <connect> <name> <instance> <timeoutMs>
// (curator-recipes.jar's manifest brings curator-framework, curator-client, guava, slf4j-api,
// zookeeper.jar; logback-classic is the one slf4j binding on the class path.)
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class CuratorService {
    private static final Logger LOG = LoggerFactory.getLogger(CuratorService.class);
    private final String connect, name, instance;
    private final int timeout;
    private CuratorFramework client;
    private LeaderLatch latch;
    private final AtomicBoolean mustRegister = new AtomicBoolean(false);
    private final AtomicBoolean primary = new AtomicBoolean(false);
    private volatile boolean stopping;

    CuratorService(String connect, String name, String instance, int timeout) {
        this.connect = connect;
        this.name = name;
        this.instance = instance;
        this.timeout = timeout;
    }

    private String sid() {
        try {
            return "0x" + Long.toHexString(client.getZookeeperClient().getZooKeeper().getSessionId());
        } catch (Exception e) {
            return "none";
        }
    }

    private void register() throws Exception {
        String me = "/services/" + name + "/" + instance;
        String data = "{\"service\":\"" + name + "\",\"instance\":\"" + instance
            + "\",\"host\":\"127.0.0.1\",\"logs\":[{\"url\":\"file://" + System.getProperty("service.log")
            + "\",\"format\":\"%d{yyyy-MM-dd HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n\"}]}";
        try {
            client.delete().forPath(me);
        } catch (KeeperException.NoNodeException ignored) {
            // not there: fine
        }
        client.create().creatingParentContainersIfNeeded().withMode(CreateMode.EPHEMERAL)
            .forPath(me, data.getBytes(StandardCharsets.UTF_8));
        LOG.info("registered ephemeral znode {} session {}", me, sid());
    }

    void run() throws Exception {
        client = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(timeout)
            .connectionTimeoutMs(timeout)
            .retryPolicy(new ExponentialBackoffRetry(200, 10, 1000))
            .build();
        client.getConnectionStateListenable().addListener((c, state) -> {
            if (state == ConnectionState.LOST) {
                LOG.warn("connection state LOST: session expired, will register again");
                mustRegister.set(true);
            } else if (state == ConnectionState.SUSPENDED) {
                LOG.warn("connection state SUSPENDED: disconnected from the ensemble");
            } else {
                LOG.info("connection state {} session {}", state, sid());
            }
        });
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection within 30 s");
        }
        client.createContainers("/data/" + name + "/counter");
        register();

        ExecutorService listenerThread = Executors.newSingleThreadExecutor(r -> new Thread(r, "leader latch listener"));
        latch = new LeaderLatch(client, "/election/" + name, instance);
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                String was = primary.getAndSet(true) ? "primary" : "standby";
                LOG.info("role change: {} -> primary (session {})", was, sid());
            }

            @Override
            public void notLeader() {
                if (primary.getAndSet(false)) {
                    LOG.info("role change: primary -> standby (session {})", sid());
                }
            }
        }, listenerThread);
        latch.start();

        final Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            main.interrupt();
            try {
                main.join(3000);
                LOG.info("shutting down, closing session {}", sid());
                latch.close();
                client.close();
            } catch (Exception ignored) {
                // exiting anyway
            }
        }, "shutdown hook"));
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
        }, "parent watch");
        watch.setDaemon(true);
        watch.start();

        Thread lister = new Thread(() -> {
            while (!stopping) {
                try {
                    List<String> names = client.getChildren().forPath("/services");
                    LOG.info("services registered: {}", names);
                } catch (Exception e) {
                    LOG.warn("listing /services failed: {}", e.toString());
                }
                try {
                    Thread.sleep(2000);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "zk worker 2");
        lister.setDaemon(true);
        lister.start();

        Thread writer = new Thread(() -> {
            long n = 0;
            while (!stopping) {
                try {
                    if (mustRegister.get() && client.getZookeeperClient().isConnected()) {
                        register();
                        mustRegister.set(false);
                        LOG.info("re-registered after session expiry, new session {}", sid());
                    }
                    n++;
                    Stat st = client.setData().forPath("/data/" + name + "/counter",
                        Long.toString(n).getBytes(StandardCharsets.UTF_8));
                    LOG.info("wrote /data/{}/counter version={} mzxid=0x{} session {}", name, st.getVersion(),
                        Long.toHexString(st.getMzxid()), sid());
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    LOG.warn("write to /data/{}/counter failed: {}", name, e.toString());
                }
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "zk worker 1");
        writer.start();
        try {
            writer.join();
        } catch (InterruptedException e) {
            writer.interrupt();
        }
    }

    public static void main(String[] a) throws Exception {
        new CuratorService(a[0], a[1], a[2], Integer.parseInt(a[3])).run();
    }
}
