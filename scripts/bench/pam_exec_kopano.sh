#!/bin/sh
# The baseline of `deno task bench`: what an administrator who distrusts a runtime per login would
# hang off pam_exec instead of pam_mapi, doing the same SOAP calls with curl.
#
#   auth required pam_exec.so expose_authtok quiet /path/pam_exec_kopano.sh URL [FEATURE]
#
# pam_exec gives the user in PAM_USER and the password on stdin (no newline). Logs on with the
# "check the password" flag, asks getUser when a FEATURE (imap, pop3, ...) must be enabled, logs
# off whenever a session was opened, and exits 0 only on an accepted logon (and enabled feature).
url=$1
feature=${2:-}
user=${PAM_USER:-}
IFS= read -r pw || [ -n "$pw" ] || exit 1
[ -n "$user" ] && [ -n "$pw" ] || exit 1

# XML-escape the two values (a fork of sed only when they hold one of the characters).
case $user in *[\&\<\>]*) user=$(printf '%s' "$user" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g') ;; esac
case $pw in *[\&\<\>]*) pw=$(printf '%s' "$pw" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g') ;; esac

head='<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa"><SOAP-ENV:Body>'
tail='</SOAP-ENV:Body></SOAP-ENV:Envelope>'

# The body comes on stdin (a here-document), so the password is never in curl's argv.
post() {
  curl -s --max-time 10 -H 'Content-Type: text/xml; charset=utf-8' --data-binary @- "$url"
}

reply=$(post <<EOF
$head<ns:logon><szUsername>$user</szUsername><szPassword>$pw</szPassword><szVersion>11.0.2</szVersion><ulCapabilities>528</ulCapabilities><ulFlags>1</ulFlags><sLicenseReq></sLicenseReq><ullSessionGroup>0</ullSessionGroup><szClientApp>pam_exec</szClientApp></ns:logon>$tail
EOF
) || exit 1
case $reply in *'<er>0</er>'*) ;; *) exit 1 ;; esac
session=${reply#*<ulSessionId>}
session=${session%%<*}
case $session in '' | *[!0-9]*) exit 1 ;; esac

status=0
if [ -n "$feature" ]; then
  status=1
  user=$(post <<EOF
$head<ns:getUser><ulSessionId>$session</ulSessionId><ulUserId>0</ulUserId><sUserId></sUserId></ns:getUser>$tail
EOF
  )
  case $user in
  *'<er>0</er>'*)
    # The effective disabled list: the values of PR_EC_DISABLED_FEATURES_A (0x6782001E).
    disabled=${user#*<ulPropId>1739853854</ulPropId>}
    [ "$disabled" = "$user" ] && disabled=''
    disabled=${disabled%%</sValues>*}
    case $disabled in *"<item>$feature</item>"*) ;; *) status=0 ;; esac
    ;;
  esac
fi

post >/dev/null <<EOF
$head<ns:logoff><ulSessionId>$session</ulSessionId></ns:logoff>$tail
EOF
exit $status
