package dev.tokenlease.platform.metrics;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.micrometer.Label;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MicrometerMetricsOptions;
import io.vertx.core.spi.VertxMetricsFactory;
import io.vertx.core.metrics.MetricsOptions;

/**
 * The process's metrics: one Prometheus registry that Vert.x reports into (HTTP server requests by
 * route template, method and status with latency histograms; event bus; client pools; JVM and GC)
 * and that the capabilities add their own meters to. Labels are bounded: routes are templates
 * ({@code /api/tokens/:token_id}), never raw paths, and no label carries a user, token or client id.
 */
public final class Metrics {
  private final PrometheusMeterRegistry registry;

  public Metrics() {
    registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    registry.config().meterFilter(new MeterFilter() {
      @Override
      public DistributionStatisticConfig configure(Meter.Id id, DistributionStatisticConfig config) {
        // Latency histograms (buckets a Prometheus query can aggregate) for requests and writes.
        if (id.getName().equals("vertx.http.server.response.time") || id.getName().startsWith("tokens.")) {
          return DistributionStatisticConfig.builder().percentilesHistogram(true)
              .minimumExpectedValue(1e5).maximumExpectedValue(6e10).build().merge(config);
        }
        return config;
      }
    });
  }

  public MeterRegistry registry() {
    return registry;
  }

  /** The Vert.x options that make Vert.x report into this registry. */
  public MetricsOptions vertxOptions() {
    return new MicrometerMetricsOptions().setEnabled(true).setJvmMetricsEnabled(true)
        .addLabels(Label.HTTP_ROUTE, Label.HTTP_METHOD, Label.HTTP_CODE);
  }

  public VertxMetricsFactory vertxFactory() {
    return new MicrometerMetricsFactory(registry);
  }

  /** Everything, in the Prometheus text format (version 0.0.4). */
  public String scrape() {
    return registry.scrape();
  }

}
