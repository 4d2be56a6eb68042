// A payment service instance on Apache Curator 5.4 (Debian's libcurator-*-java, including
// libcurator-discovery-java, over Debian's zookeeper.jar 3.8), logging through logback 1.2
// (Debian's liblogback-java), for samples/incident-3:
//
// - registers itself through Curator's ServiceDiscovery (basePath /services): the znode is
//   Curator's own EPHEMERAL /services/<name>/<instance> holding Curator's JSON ServiceInstance
//   (name, id, address 127.0.0.1, port, payload {"service", "instance", "logs": [{url, format}]},
//   registrationTimeUTC, serviceType DYNAMIC, ...); ServiceDiscovery registers again by itself on
//   RECONNECTED (a new session after an expiry included);
// - takes part in a LeaderSelector election under /election/<name> (autoRequeue, a
//   LeaderSelectorListenerAdapter, so leadership is cancelled on SUSPENDED and LOST). No setId():
//   the election nodes `_c_<uuid>-lock-NNNNNNNNNN` hold Curator's default node data (the local
//   IP address), so the data does not name the holder. takeLeadership() only sleeps until it is
//   interrupted;
// - logs nothing about its part in the election: its own lines (logger PayService) are the
//   registration, connection states and a neutral "served request N (session 0x...)" once a
//   second, whether or not it holds the election. Curator's and the ZooKeeper client's own
//   threads log to the same file whatever they log.
// On SIGTERM it closes the selector, the discovery and the client (a clean closeSession); when its
// parent (the recording script) dies, it exits too.
//
// Compiled and run by record-incident-3.py:
//   javac -implicit:none -cp /usr/share/java/curator-recipes.jar:/usr/share/java/curator-x-discovery.jar -d OUT PayService.java
//   java -Dlogback.configurationFile=LOGBACK_XML -Dservice.log=LOG \
//        -cp OUT:/usr/share/java/curator-recipes.jar:/usr/share/java/curator-x-discovery.jar:/usr/share/java/logback-classic.jar:/usr/share/java/logback-core.jar \
//        PayService <connect> <name> <instance> <timeoutMs> <port>
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class PayService {
    private static final Logger LOG = LoggerFactory.getLogger(PayService.class);
    private final String connect, name, instance;
    private final int timeout, port;
    private CuratorFramework client;
    private ServiceDiscovery<Map> discovery;
    private LeaderSelector selector;
    private volatile boolean stopping;

    PayService(String connect, String name, String instance, int timeout, int port) {
        this.connect = connect;
        this.name = name;
        this.instance = instance;
        this.timeout = timeout;
        this.port = port;
    }

    private String sid() {
        try {
            return "0x" + Long.toHexString(client.getZookeeperClient().getZooKeeper().getSessionId());
        } catch (Exception e) {
            return "none";
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    void run() throws Exception {
        client = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(timeout)
            .connectionTimeoutMs(timeout)
            .retryPolicy(new ExponentialBackoffRetry(200, 10, 1000))
            .build();
        client.getConnectionStateListenable().addListener((c, state) ->
            LOG.info("connection state {} (session {})", state, sid()));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection within 30 s");
        }

        Map<String, Object> log = new LinkedHashMap<>();
        log.put("url", "file://" + System.getProperty("service.log"));
        log.put("format", "%d{yyyy-MM-dd HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n");
        Map<String, Object> payload = new LinkedHashMap<>();
        payload.put("service", name);
        payload.put("instance", instance);
        payload.put("logs", List.of(log));
        ServiceInstance<Map> me = ServiceInstance.<Map>builder()
            .name(name).id(instance).address("127.0.0.1").port(port).payload(payload).build();
        discovery = ServiceDiscoveryBuilder.builder(Map.class)
            .client(client)
            .basePath("/services")
            .serializer(new JsonInstanceSerializer<>(Map.class))
            .thisInstance(me)
            .build();
        discovery.start();
        LOG.info("registered /services/{}/{} through ServiceDiscovery, port {} (session {})", name, instance, port, sid());

        selector = new LeaderSelector(client, "/election/" + name, new LeaderSelectorListenerAdapter() {
            @Override
            public void takeLeadership(CuratorFramework c) throws Exception {
                // Holds the election until interrupted (the adapter cancels on SUSPENDED/LOST).
                Thread.sleep(Long.MAX_VALUE);
            }
        });
        selector.autoRequeue();
        selector.start();

        final Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            main.interrupt();
            try {
                main.join(3000);
                LOG.info("shutting down, closing session {}", sid());
                selector.close();
                discovery.close();
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

        long n = 0;
        while (!stopping) {
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                break;
            }
            n++;
            LOG.info("served request {} (session {})", n, sid());
        }
    }

    public static void main(String[] a) throws Exception {
        new PayService(a[0], a[1], a[2], Integer.parseInt(a[3]), Integer.parseInt(a[4])).run();
    }
}
