// Starts an embedded Neo4j 5.26 community DBMS with its Bolt connector, for tests and for
// users without Docker. Launched as a single-file source program by graph/local_neo4j.py:
//
//   NEO4J_PASSWORD=... java -cp <jars from pom.xml> LocalNeo4j.java --home DIR --port N
//
// (or compiled once with javac and run as the class LocalNeo4j, which starts 1.3 s sooner).
// The password comes from the environment so it never appears in `ps` output. The process
// prints "READY <bolt uri>" once Bolt accepts connections and shuts the DBMS down cleanly on
// SIGTERM (the JVM runs shutdown hooks), so no store recovery is needed on the next start.
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.QueryExecutionException;
import org.neo4j.io.ByteUnit;

public class LocalNeo4j {
    public static void main(String[] args) throws Exception {
        String home = null;
        int port = 7687;
        long pageCacheMb = 512;
        long lockTimeoutMs = 0;  // Neo4j's default: wait for a lock as long as it takes
        // The system database keeps the password across restarts; setting it again costs the
        // first Cypher compilation (~4 s of a 10 s start on two cores).
        boolean passwordAlreadySet = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--home" -> home = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--page-cache-mb" -> pageCacheMb = Long.parseLong(args[++i]);
                case "--lock-timeout-ms" -> lockTimeoutMs = Long.parseLong(args[++i]);
                case "--password-already-set" -> passwordAlreadySet = true;
                default -> fail("unknown argument " + args[i]);
            }
        }
        if (home == null) fail("--home DIR is required");
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8)
            fail("set NEO4J_PASSWORD (8 characters or more) in the environment");

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(Path.of(home))
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(pageCacheMb))
                // A transaction kept waiting longer for a lock fails with the transient
                // LockAcquisitionTimeout, which drivers retry, instead of hanging behind a
                // forgotten open transaction.
                .setConfig(GraphDatabaseSettings.lock_acquisition_timeout, Duration.ofMillis(lockTimeoutMs))
                // Bolt's shutdown otherwise waits 5 s for idle connections and 5 s more for its
                // thread pool after the databases are already closed: half the time of a bulk
                // import's stop-import-start on 100k customers (docs/benchmarks.md).
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofMillis(100))
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofMillis(100))
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("STOPPING");
            dbms.shutdown();
            System.out.println("STOPPED");
            stopped.countDown();
        }));
        try {
            if (!passwordAlreadySet) setPassword(dbms, password);
        } catch (RuntimeException e) {
            e.printStackTrace();
            System.exit(3);  // runs the shutdown hook, so the store is closed cleanly
        }
        System.out.println("READY bolt://127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }

    // Community edition has the single built-in user `neo4j`; embedded access to the system
    // database bypasses auth, which is how the password is set without the admin tool.
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (QueryExecutionException e) {
            // A restart with the same password: Neo4j refuses to "change" it, which is fine.
            if (e.getMessage() == null || !e.getMessage().contains("Old password and new password cannot be the same"))
                throw e;
        }
    }

    private static void fail(String message) {
        System.err.println("LocalNeo4j: " + message);
        System.exit(2);
    }
}
