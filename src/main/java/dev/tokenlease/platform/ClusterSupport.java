package dev.tokenlease.platform;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.metrics.Metrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;

/**
 * Builds the Vert.x instance: a plain one, or with {@code TOKENS_CLUSTER=true} one whose event bus
 * spans the nodes of a Hazelcast cluster (TCP join with the configured members; no multicast), so
 * that verticles elsewhere can use the {@code tokens.api.*} addresses and follow
 * {@code tokens.events}. The pool stays single-owner: the database's instance lock lets only one
 * service per database run, whatever the cluster.
 */
public final class ClusterSupport {
  static final String CLUSTER_NAME = "token-service";

  private ClusterSupport() {}

  /** A Vert.x instance, clustered if configured, that reports into {@code metrics}. */
  public static Future<Vertx> vertx(AppConfig.ClusterConfig cluster, Metrics metrics) {
    VertxOptions options = new VertxOptions().setMetricsOptions(metrics.vertxOptions());
    if (!cluster.enabled()) {
      return Future.succeededFuture(Vertx.builder().with(options).withMetrics(metrics.vertxFactory()).build());
    }
    options.getEventBusOptions().setHost(cluster.host()).setPort(0);
    return Vertx.builder()
        .with(options)
        .withMetrics(metrics.vertxFactory())
        .withClusterManager(new HazelcastClusterManager(hazelcast(cluster)))
        .buildClustered();
  }

  /** Vert.x's default Hazelcast settings (the maps it needs), with our network and join. */
  static Config hazelcast(AppConfig.ClusterConfig cluster) {
    Config config = ConfigUtil.loadConfig();
    config.setClusterName(CLUSTER_NAME);
    config.setProperty("hazelcast.logging.type", "slf4j");
    config.setProperty("hazelcast.phone.home.enabled", "false");
    config.getNetworkConfig().setPort(cluster.port()).setPortAutoIncrement(true);
    config.getNetworkConfig().getInterfaces().setEnabled(true).addInterface(cluster.host());
    JoinConfig join = config.getNetworkConfig().getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    join.getTcpIpConfig().setEnabled(true).addMember(cluster.host() + ":" + cluster.port());
    cluster.members().forEach(member -> join.getTcpIpConfig().addMember(member));
    return config;
  }
}
