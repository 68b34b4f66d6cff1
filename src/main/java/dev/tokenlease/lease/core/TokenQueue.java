package dev.tokenlease.lease.core;

/** An intrusive doubly linked FIFO of tokens: O(1) append, removal and head access. */
final class TokenQueue {
  private Token head;
  private Token tail;
  private int size;

  Token head() {
    return head;
  }

  int size() {
    return size;
  }

  void append(Token token) {
    token.prev = tail;
    token.next = null;
    if (tail == null) {
      head = token;
    } else {
      tail.next = token;
    }
    tail = token;
    size++;
  }

  /** Puts a token back right after {@code prev}, or at the head when {@code prev} is null. */
  void insertAfter(Token prev, Token token) {
    Token next = prev == null ? head : prev.next;
    token.prev = prev;
    token.next = next;
    if (prev == null) {
      head = token;
    } else {
      prev.next = token;
    }
    if (next == null) {
      tail = token;
    } else {
      next.prev = token;
    }
    size++;
  }

  void remove(Token token) {
    if (token.prev == null) {
      head = token.next;
    } else {
      token.prev.next = token.next;
    }
    if (token.next == null) {
      tail = token.prev;
    } else {
      token.next.prev = token.prev;
    }
    token.prev = null;
    token.next = null;
    size--;
  }
}
