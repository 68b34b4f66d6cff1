package dev.tokenlease.lease.core;

import java.util.Arrays;

/**
 * The tokens on lease, ordered by when their lease ends: a binary min-heap on the monotonic
 * deadline, ties in the order the leases were granted or last renewed (so a full pool of one TTL
 * behaves exactly as a queue), indexed through {@link Token#heapIndex} so that any token can
 * leave in O(log n). The head is the lease due to end first: the next to expire, the one a full
 * {@code evict_oldest} pool evicts, and what a refusal's Retry-After counts down to.
 *
 * <p>With one lease TTL, a grant or renewal always ends last, so it stays where it is appended and
 * costs O(1); a lease cut short by {@code max_hold} or granted under a shorter TTL moves up.
 */
final class ActiveLeases {
  private Token[] heap = new Token[16];
  private int size;
  /** Stamps additions, for the order among equal deadlines. */
  private long added;

  int size() {
    return size;
  }

  Token head() {
    return size == 0 ? null : heap[0];
  }

  /** The token at a heap position, for visiting all of them in no particular order. */
  Token at(int index) {
    return heap[index];
  }

  void add(Token token) {
    insert(token, ++added);
  }

  /** Puts a token back as it was before {@link #remove}, at its old place among equal deadlines. */
  void restore(Token token, long order) {
    insert(token, order);
  }

  private void insert(Token token, long order) {
    token.heapOrder = order;
    if (size == heap.length) {
      heap = Arrays.copyOf(heap, heap.length * 2);
    }
    heap[size] = token;
    token.heapIndex = size;
    size++;
    siftUp(token.heapIndex);
  }

  void remove(Token token) {
    int index = token.heapIndex;
    if (index < 0 || index >= size || heap[index] != token) {
      throw new IllegalStateException("token " + token.id + " is not on lease");
    }
    size--;
    Token last = heap[size];
    heap[size] = null;
    token.heapIndex = -1;
    if (index < size) {
      heap[index] = last;
      last.heapIndex = index;
      siftDown(index);
      siftUp(last.heapIndex);
    }
  }

  private void siftUp(int index) {
    Token token = heap[index];
    while (index > 0) {
      int parent = (index - 1) >>> 1;
      Token above = heap[parent];
      if (!before(token, above)) {
        break;
      }
      heap[index] = above;
      above.heapIndex = index;
      index = parent;
    }
    heap[index] = token;
    token.heapIndex = index;
  }

  private void siftDown(int index) {
    Token token = heap[index];
    int half = size >>> 1;
    while (index < half) {
      int child = 2 * index + 1;
      int right = child + 1;
      if (right < size && before(heap[right], heap[child])) {
        child = right;
      }
      if (!before(heap[child], token)) {
        break;
      }
      heap[index] = heap[child];
      heap[index].heapIndex = index;
      index = child;
    }
    heap[index] = token;
    token.heapIndex = index;
  }

  /** Whether {@code a}'s lease ends before {@code b}'s (monotonic times compared by difference). */
  private static boolean before(Token a, Token b) {
    long diff = a.lease.deadlineNanos - b.lease.deadlineNanos;
    return diff < 0 || (diff == 0 && a.heapOrder < b.heapOrder);
  }
}
