package cdi.phone;

import com.google.i18n.phonenumbers.NumberParseException;
import com.google.i18n.phonenumbers.PhoneNumberUtil;
import com.google.i18n.phonenumbers.PhoneNumberUtil.PhoneNumberFormat;
import com.google.i18n.phonenumbers.PhoneNumberUtil.ValidationResult;
import com.google.i18n.phonenumbers.Phonenumber.PhoneNumber;
import org.apache.spark.sql.api.java.UDF2;

/**
 * A phone number in E.164, or null when it cannot be a full number: {@code matching.normalize_contact.to_e164}
 * in the JVM, with libphonenumber at the version of the Python {@code phonenumbers} package (its port).
 *
 * <p>The Python function costs about 15 microseconds a number, and a pandas UDF sends every number to a
 * Python worker and back; this one is a Spark SQL function (registered by {@code jobs/spark.py}) that runs in
 * the task's own thread. Same rules: ASCII letters are refused (libphonenumber would read "0800 FLOWERS" as
 * digits), the number must be possible for its region (not necessarily allocated), and at least 7 digits.
 */
public final class ToE164 implements UDF2<String, String, String> {
    private static final long serialVersionUID = 1L;
    private static final PhoneNumberUtil PHONES = PhoneNumberUtil.getInstance();
    private static final int MIN_E164_LENGTH = 8; // "+" and 7 digits

    @Override
    public String call(String number, String region) {
        if (number == null || hasAsciiLetter(number)) {
            return null;
        }
        final PhoneNumber parsed;
        try {
            parsed = PHONES.parse(number, region);
        } catch (NumberParseException notANumber) {
            return null;
        }
        if (PHONES.isPossibleNumberWithReason(parsed) != ValidationResult.IS_POSSIBLE) {
            return null;
        }
        String e164 = PHONES.format(parsed, PhoneNumberFormat.E164);
        return e164.length() >= MIN_E164_LENGTH ? e164 : null;
    }

    private static boolean hasAsciiLetter(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
                return true;
            }
        }
        return false;
    }
}
