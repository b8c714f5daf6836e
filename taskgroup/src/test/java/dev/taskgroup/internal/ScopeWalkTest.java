package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The second walk of {@link Scope#cancelledAbove}, which checks that no shield went up below the
 * cancelled node the first walk found. Between the two walks the chain may lose a link: a group
 * entered directly in a task drops its parent once its run has ended. A concurrent {@code cancel()}
 * then threw a {@link NullPointerException} from the walk (twice in 36 000 rounds of nested groups
 * cancelled at once), cutting its delivery short; the walk must report the chain changed instead,
 * so that the caller walks again.
 */
class ScopeWalkTest {
  @Test
  void aChainThatNoLongerReachesTheFoundNodeSaysSoInsteadOfFallingOffItsEnd() {
    PlainScope below = new PlainScope(false); // not entered: no parent, as after a dropped link
    PlainScope found = new PlainScope(false);
    assertThat(Scope.noShieldBelow(below, found)).isFalse();
  }

  @Test
  void aChainThatReachesTheFoundNodeWithNoShieldSaysSo() {
    PlainScope only = new PlainScope(false);
    assertThat(Scope.noShieldBelow(only, only)).isTrue();
    assertThat(Scope.noShieldBelow(only, null)).isTrue();
    assertThat(Scope.noShieldBelow(new PlainScope(true), null)).isFalse();
  }
}
