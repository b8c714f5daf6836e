/**
 * The JDK {@code StructuredTaskScope} peers (JDK 25, preview API). This source folder is compiled
 * only in the {@code bench} profile, with {@code --enable-preview --release 25}; the default build
 * (and a machine with only JDK 21) never sees it.
 */
package dev.taskgroup.bench.sts;
