#!/bin/sh
# The network boards' web server (BusyBox httpd on the board's network, port 80). Pages:
#   /                 a greeting with the board's hostname
#   /cgi-bin/resolv   the container's /etc/resolv.conf (bound read-only from /run/net)
#   /cgi-bin/poweroff powers the board off (kill -USR2 1: this test board's container
#                     shares the board's pid namespace for that; a real board would not)
set -e
www=/srv/www
mkdir -p "$www/cgi-bin"
echo "DORY-NET-PAGE hello from $(hostname) over the board's network" >"$www/index.html"
cat >"$www/cgi-bin/resolv" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
cat /etc/resolv.conf
CGI
cat >"$www/cgi-bin/poweroff" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\npowering off\n'
echo "DORY-NET poweroff requested over HTTP" >&2
kill -USR2 1
CGI
chmod 755 "$www/cgi-bin/resolv" "$www/cgi-bin/poweroff"
echo "DORY-NET httpd listening on port 80"
exec httpd -f -v -p 80 -h "$www"
