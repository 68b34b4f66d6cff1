package dev.tokenlease.vault;

/** Event-bus addresses of the vault (local; records of {@link CredentialMessages}). */
public final class CredentialAddresses {
  private CredentialAddresses() {}

  public static final String CREATE = "tokens.credentials.create";
  public static final String LIST = "tokens.credentials.list";
  public static final String GET = "tokens.credentials.get";
  public static final String HISTORY = "tokens.credentials.history";
  public static final String RETIRE = "tokens.credentials.retire";
  public static final String ROTATE = "tokens.credentials.rotate";
  public static final String CURRENT = "tokens.credentials.current";
  public static final String USAGE = "tokens.credentials.usage";
  public static final String REENCRYPT = "tokens.credentials.reencrypt";

  /** Every vault change (creation, rotation and its failures, retirement) as JSON, without values. */
  public static final String EVENTS = "tokens.credentials.events";
}
